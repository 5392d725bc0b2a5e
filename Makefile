# Top-level build. `make` builds the hypervisor ELF, `make iso` the boot ISO,
# `make run` boots it, `make test` runs every test. See README.md.

BUILD      ?= build
.SECONDEXPANSION:

.PHONY: all
all:
CC         := gcc
HOSTCC     := gcc
CLANG      := clang

# ---------------------------------------------------------------------------
# Host unit tests of the pure logic (tests/unit). Each tests/unit/*.mk adds a
# test:   UNIT_TESTS += foo      foo_SRCS := shadow/foo.c ...
# and tests/unit/test_foo.c is linked with $(foo_SRCS) and the harness.
# ---------------------------------------------------------------------------
UNIT_CFLAGS := -std=gnu11 -g -O1 -Wall -Wextra -Werror -I. -Itests/unit \
               -fsanitize=address,undefined -fno-sanitize-recover=all \
               -fno-omit-frame-pointer
UNIT_TESTS :=
-include $(wildcard tests/unit/*.mk)

UNIT_BINS := $(patsubst %,$(BUILD)/unit/test_%,$(UNIT_TESTS))

$(BUILD)/unit/test_%: tests/unit/test_%.c tests/unit/unit.c tests/unit/unit.h $$($$*_SRCS) $(wildcard shadow/*.h ept/*.h mm/*.h lib/*.h tests/unit/*.h)
	@mkdir -p $(dir $@)
	$(HOSTCC) $(UNIT_CFLAGS) -o $@ $< tests/unit/unit.c $($*_SRCS)

.PHONY: unit
unit: $(UNIT_BINS)

# ---------------------------------------------------------------------------
# libFuzzer targets (tests/fuzz). Each tests/fuzz/*.mk adds:
#   FUZZ_TARGETS += foo   foo_FUZZ_SRCS := shadow/foo.c
# tests/fuzz/fuzz_foo.c defines LLVMFuzzerTestOneInput; corpus in
# tests/fuzz/corpus/foo/.
# ---------------------------------------------------------------------------
FUZZ_CFLAGS := -std=gnu11 -g -O1 -Wall -Wextra -Werror -I. \
               -fsanitize=fuzzer,address,undefined
FUZZ_TARGETS :=
-include $(wildcard tests/fuzz/*.mk)
FUZZ_BINS := $(patsubst %,$(BUILD)/fuzz/fuzz_%,$(FUZZ_TARGETS))

$(BUILD)/fuzz/fuzz_%: tests/fuzz/fuzz_%.c $$($$*_FUZZ_SRCS) $(wildcard shadow/*.h lib/*.h)
	@mkdir -p $(dir $@)
	$(CLANG) $(FUZZ_CFLAGS) -o $@ $< $($*_FUZZ_SRCS)

.PHONY: fuzz
fuzz: $(FUZZ_BINS)

# Guest test kernels (tests/guests/guests.mk defines GUEST_KERNELS and rules
# producing $(BUILD)/guests/<name>.elf).
GUEST_KERNELS :=
-include tests/guests/guests.mk
.PHONY: guests
guests: $(GUEST_KERNELS)

# ---------------------------------------------------------------------------
# The hypervisor (freestanding ELF64, identity-mapped at 1 MiB).
# ---------------------------------------------------------------------------
NEWLIB     := $(BUILD)/newlib
LIBC       := $(NEWLIB)/lib/libc.a
LIBGCC     := $(shell $(CC) -print-libgcc-file-name)
KERNEL     := $(BUILD)/umbra.elf

KERNEL_CFLAGS := -std=gnu11 -O2 -g -ffreestanding -fno-pic -fno-pie -mno-red-zone \
                 -mgeneral-regs-only -fno-stack-protector -fno-omit-frame-pointer \
                 -fno-common -Wall -Wextra -Werror -I. -isystem $(NEWLIB)/include -MMD -MP
KERNEL_ASFLAGS := -I. -MMD -MP

# Pure-logic sources of other subsystems join this list as they are wired in.
KERNEL_SRCS := $(wildcard boot/*.c boot/*.S arch/x86/*.c arch/x86/*.S mm/*.c lib/*.c \
                          ept/*.c shadow/*.c guest/*.c devices/*.c vmx/*.c vmx/*.S core/*.c)
KERNEL_OBJS := $(patsubst %,$(BUILD)/obj/%.o,$(KERNEL_SRCS))

all: $(KERNEL)

$(LIBC):
	tools/build-newlib.sh $(NEWLIB)

$(BUILD)/obj/%.c.o: %.c | $(LIBC)
	@mkdir -p $(dir $@)
	$(CC) $(KERNEL_CFLAGS) -c $< -o $@

$(BUILD)/obj/%.S.o: %.S
	@mkdir -p $(dir $@)
	$(CC) $(KERNEL_ASFLAGS) -c $< -o $@

# The link also proves the "no SSE in the hypervisor" rule on the final image.
$(KERNEL): $(KERNEL_OBJS) linker.ld $(LIBC)
	ld -n -nostdlib -z noexecstack -z max-page-size=4096 -T linker.ld -o $@ \
	   $(KERNEL_OBJS) $(LIBC) $(LIBGCC)
	@if objdump -d $@ | grep -qE '%[xy]mm[0-9]'; then \
	   echo "error: $@ uses SSE registers"; objdump -d $@ | grep -E '%[xy]mm' | head; \
	   rm -f $@; exit 1; fi

-include $(KERNEL_OBJS:.o=.d)

# ---------------------------------------------------------------------------
# ISO, run, test
# ---------------------------------------------------------------------------
ISO := $(BUILD)/umbra.iso
# The default guests of `make run`: one of each kind, all on EPT.
RUN_GUESTS := $(BUILD)/guests/cpuid64.elf "name=cpuid mmu=ept" \
              $(BUILD)/guests/hlt_timer.elf "name=timer mmu=ept" \
              $(BUILD)/guests/memtest.elf "name=memtest mmu=ept mem=64M"
HV_ARGS ?=

.PHONY: iso run test bench linux linux-guest
iso: $(ISO)
$(ISO): $(KERNEL) $(GUEST_KERNELS) tools/mkiso.sh
	tools/mkiso.sh $@ $(KERNEL) "$(HV_ARGS)" $(RUN_GUESTS)

run: $(ISO)
	tools/run.sh $(ISO)

# The Linux guest is fetched first; if that fails its test says the kernel is missing.
test: $(KERNEL) $(GUEST_KERNELS) unit $(FUZZ_BINS)
	-$(MAKE) --no-print-directory linux-guest
	tools/testrun.py

# Everything, the Linux guest too (fetched first; without it its rows stay as they are).
# One part only: tools/bench.py --workloads linux --write (see BENCHMARKS.md).
bench: $(KERNEL) $(GUEST_KERNELS)
	-$(MAKE) --no-print-directory linux-guest
	tools/bench.py

# kvm-unit-tests (x86) as umbra guests in Bochs under EPT and shadow paging, one run per
# test and mode (docs/KUT.md); not part of `make test`. KUT_ARGS: tools/kut.py's tests
# and options, e.g. make kut KUT_ARGS="--mode ept emulator access".
# Then two more Bochs CPU models: KUT_CPU2 has EPT without A/D bits (access and emulator
# under EPT), KUT_CPU3 no unrestricted guest, so umbra runs shadow guests only (emulator).
KUT_ARGS ?=
KUT_CPU2 ?= corei7_sandy_bridge_2600k
KUT_CPU3 ?= corei5_lynnfield_750
.PHONY: kut
kut: $(KERNEL)
	@st=0; tools/kut.py --expect tests/kut/expected.txt $(KUT_ARGS) || st=1; \
	tools/kut.py --expect tests/kut/expected.txt --cpu $(KUT_CPU2) --mode ept \
		--out $(BUILD)/kut/$(KUT_CPU2) access emulator || st=1; \
	tools/kut.py --expect tests/kut/expected.txt --cpu $(KUT_CPU3) --mode shadow \
		--out $(BUILD)/kut/$(KUT_CPU3) emulator realmode s3 || st=1; exit $$st

# Debian's Linux kernel and a busybox initramfs with the workload (tools/linux.sh:
# apt-get download, kept in build/linux/debs), then the Linux integration tests.
LINUX_DIR := $(BUILD)/linux
linux-guest: $(LINUX_DIR)/initrd.cpio
$(LINUX_DIR)/initrd.cpio: tools/linux.sh tools/vmlinux.py tests/linux/init tests/linux/workload.sh
	tools/linux.sh $(LINUX_DIR)

linux: $(KERNEL) $(GUEST_KERNELS) linux-guest
	tools/testrun.py --linux
