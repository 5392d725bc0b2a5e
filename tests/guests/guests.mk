# Guest test kernels (see tests/guests/README.md). Included by the top-level Makefile, whose
# `guests` target builds $(GUEST_KERNELS). Every kernel is $(BUILD)/guests/<name>.elf:
#   GUESTS_32     32-bit multiboot kernels, <name>.c
#   GUESTS_64     64-bit multiboot kernels (ELF64 objcopied to ELF32); <name>64 is built from
#                 <name>.c, any other name from <name>.c too
#   GUESTS_ELF64  plain ELF64 kernels without multiboot header, entered in long mode

GUEST_DIR := tests/guests
GUEST_OUT := $(BUILD)/guests

GUESTS_32    := cpuid msr io hlt_timer vmcall triplefault apic mmio platform paging32 paging_pae rmode \
		strio crcheck smp_ipi
GUESTS_64    := cpuid64 msr64 io64 vmcall64 memtest isolation apic64 mmio64 platform64 paging64 \
		table_to_data \
		ageing hostile_pt events storm strio64 \
		cpufeat crcheck64 emu_insns
# Several CPUs (lib/smp.c): bring-up, IPIs, and the shared page-table stress.
GUESTS_64    += smp_basic smp_tlb
GUESTS_ELF64 := elf64
# Entered as a Linux vmlinux by the 64-bit boot protocol (its "Linux" note: lib/entry_linux.S).
GUESTS_LINUX := linuxboot
# Benchmark workloads for tools/bench.py (tests/bench.py), 64-bit, sharing bench_common.h.
GUESTS_64    += bench_fork bench_randwalk bench_churn bench_compute \
		bench_hotcold

GUEST_KERNELS += $(patsubst %,$(GUEST_OUT)/%.elf,$(GUESTS_32) $(GUESTS_64) $(GUESTS_ELF64) \
                   $(GUESTS_LINUX))

GUEST_CFLAGS := -std=gnu11 -O2 -g -ffreestanding -fno-pic -fno-pie -fno-stack-protector \
                -nostdlib -mgeneral-regs-only -fno-asynchronous-unwind-tables -fno-common \
                -fno-tree-loop-distribute-patterns -fcf-protection=none \
                -Wall -Wextra -Werror -I. -I$(GUEST_DIR)/lib -MMD -MP
GUEST_CFLAGS_32 := -m32
GUEST_CFLAGS_64 := -m64 -mno-red-zone
GUEST_LDFLAGS := -nostdlib -z noexecstack -z max-page-size=4096 -T $(GUEST_DIR)/linker.ld

# Library objects common to every kernel of one width (the entry code is added per kind).
GUEST_LIB := $(patsubst $(GUEST_DIR)/%,%,$(wildcard $(GUEST_DIR)/lib/*.c)) lib/boot_data.S \
             lib/isr.S lib/lapic_isr.S lib/usermode.S \
             lib/smp_tramp.S
GUEST_LIB32 := $(patsubst %,$(GUEST_OUT)/obj32/%.o,$(GUEST_LIB))
GUEST_LIB64 := $(patsubst %,$(GUEST_OUT)/obj64/%.o,$(GUEST_LIB))

# cpuid64 -> cpuid: the source of a 64-bit kernel.
guest_src64 = $(patsubst %64,%,$(1))

$(GUEST_OUT)/obj32/%.c.o: $(GUEST_DIR)/%.c
	@mkdir -p $(dir $@)
	$(CC) $(GUEST_CFLAGS) $(GUEST_CFLAGS_32) -c $< -o $@

$(GUEST_OUT)/obj32/%.S.o: $(GUEST_DIR)/%.S
	@mkdir -p $(dir $@)
	$(CC) $(GUEST_CFLAGS) $(GUEST_CFLAGS_32) -c $< -o $@

$(GUEST_OUT)/obj64/%.c.o: $(GUEST_DIR)/%.c
	@mkdir -p $(dir $@)
	$(CC) $(GUEST_CFLAGS) $(GUEST_CFLAGS_64) -c $< -o $@

$(GUEST_OUT)/obj64/%.S.o: $(GUEST_DIR)/%.S
	@mkdir -p $(dir $@)
	$(CC) $(GUEST_CFLAGS) $(GUEST_CFLAGS_64) -c $< -o $@

GUEST_LINK_DEPS := $(GUEST_DIR)/linker.ld $(GUEST_DIR)/check-kernel.sh

$(GUESTS_32:%=$(GUEST_OUT)/%.elf): $(GUEST_OUT)/%.elf: $(GUEST_OUT)/obj32/%.c.o \
		$(GUEST_OUT)/obj32/lib/entry32.S.o $(GUEST_LIB32) $(GUEST_LINK_DEPS)
	ld -m elf_i386 $(GUEST_LDFLAGS) -o $@ $(filter %.o,$^)
	$(GUEST_DIR)/check-kernel.sh multiboot $@

# Linked as ELF64 (kept as <name>.elf64 for objdump/gdb), then relabelled ELF32 for loaders.
$(GUESTS_64:%=$(GUEST_OUT)/%.elf): $(GUEST_OUT)/%.elf: \
		$(GUEST_OUT)/obj64/$$(call guest_src64,$$*).c.o \
		$(GUEST_OUT)/obj64/lib/entry64.S.o $(GUEST_LIB64) $(GUEST_LINK_DEPS)
	ld -m elf_x86_64 $(GUEST_LDFLAGS) -o $@64 $(filter %.o,$^)
	objcopy -O elf32-i386 $@64 $@
	$(GUEST_DIR)/check-kernel.sh multiboot $@

$(GUESTS_ELF64:%=$(GUEST_OUT)/%.elf): $(GUEST_OUT)/%.elf: $(GUEST_OUT)/obj64/%.c.o \
		$(GUEST_OUT)/obj64/lib/entry_elf64.S.o $(GUEST_LIB64) $(GUEST_LINK_DEPS)
	ld -m elf_x86_64 $(GUEST_LDFLAGS) -o $@ $(filter %.o,$^)
	$(GUEST_DIR)/check-kernel.sh elf64 $@

$(GUESTS_LINUX:%=$(GUEST_OUT)/%.elf): $(GUEST_OUT)/%.elf: $(GUEST_OUT)/obj64/%.c.o \
		$(GUEST_OUT)/obj64/lib/entry_linux.S.o $(GUEST_LIB64) $(GUEST_LINK_DEPS)
	ld -m elf_x86_64 $(GUEST_LDFLAGS) -o $@ $(filter %.o,$^)
	$(GUEST_DIR)/check-kernel.sh elf64 $@

-include $(wildcard $(GUEST_OUT)/obj32/*.d $(GUEST_OUT)/obj32/lib/*.d \
                    $(GUEST_OUT)/obj64/*.d $(GUEST_OUT)/obj64/lib/*.d)
