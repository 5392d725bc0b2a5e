/*
 * The guest test library: everything a guest test kernel (tests/guests/<name>.c) uses.
 * A test defines `int main(void)`, calls report()/report_skip() and returns
 * report_summary(); the library boots it (lib/entry*.S, lib/start.c), prints on COM1 and
 * exits through the isa-debug-exit port. See tests/guests/README.md.
 */
#ifndef GUEST_LIBGUEST_H
#define GUEST_LIBGUEST_H

#include <stdarg.h>
#include "guest_types.h"
#include "boot.h"
#include "x86.h"

/* --- Console (COM1, polled) and formatting: lib/console.c ----------------------------------- */

/* Supports %d %i %u %x %X %p %s %c %% with l/ll sizes, a field width and the 0 flag. */
int printf(const char *fmt, ...) __attribute__((format(printf, 1, 2)));
int vprintf(const char *fmt, va_list ap);
void putchar_serial(char c);
void puts_serial(const char *s);

/* --- Test reporting: lib/report.c ----------------------------------------------------------- */

/* Prints "PASS: msg" or "FAIL: msg"; a FAIL makes the kernel exit with code 1. */
void report(bool pass, const char *fmt, ...) __attribute__((format(printf, 2, 3)));
/* Prints "SKIP: msg" (the check does not apply here, e.g. umbra-only outside umbra). */
void report_skip(const char *fmt, ...) __attribute__((format(printf, 1, 2)));
/*
 * report() for behaviour the platform contract promises but other machines need not have
 * (QEMU TCG ignores TSC writes and unknown MSRs): outside umbra a failure is a SKIP.
 */
void report_umbra(bool pass, const char *fmt, ...) __attribute__((format(printf, 2, 3)));
/* Prints "SUMMARY: N tests, F unexpected failures, S skipped"; returns 0 if F == 0, else 1. */
int report_summary(void);
/* isa-debug-exit (port 0xf4): the VMM ends the guest with status (code << 1) | 1. */
void exit(int code) __attribute__((noreturn));

/* --- Exceptions: lib/trap.c ----------------------------------------------------------------- */

/*
 * Expected exceptions, like kvm-unit-tests' ASM_TRY. Put ASM_TRY("1f") right before the
 * instruction that may fault and the local label "1:" where execution should resume:
 *
 *	expect_exception(GP_VECTOR);
 *	asm volatile(ASM_TRY("1f") "wrmsr\n1:" : : "c"(msr), "a"(lo), "d"(hi));
 *	if (exception_caught()) ...
 *
 * If that instruction raises the armed vector, the handler records it in last_exception and
 * resumes at the label. Any other exception is unexpected: it is printed with its vector,
 * error code and EIP/RIP, counted as a failure, and the kernel exits.
 */
#define ASM_TRY(recovery)                                                      \
	".pushsection .ex_table, \"a\"\n\t"                                    \
	ASM_PTR " 1111f, " recovery "\n\t"                                     \
	".popsection\n\t"                                                      \
	"1111: "

struct exception_record {
	int vector;			/* -1: nothing caught since expect_exception() */
	unsigned long error_code;
	unsigned long ip;		/* address of the faulting instruction */
};
extern volatile struct exception_record last_exception;

void expect_exception(int vector);
/* Disarms; true if the armed vector was raised (and recovered) since expect_exception(). */
bool exception_caught(void);
/* expect_exception(ANY_VECTOR): any exception (vectors 0-31) at an ASM_TRY site. */
#define ANY_VECTOR (-2)
#define NO_EXCEPTION (-1)
/*
 * Runs one asm statement (its whole body, with an ASM_TRY("1f") ... "1:" site) and yields
 * the vector of the exception it raised, or NO_EXCEPTION:
 *	if (ASM_TRY_VECTOR(ASM_TRY("1f") "mov %0, %%cr4\n1:" : : "r"(v)) == GP_VECTOR) ...
 */
#define ASM_TRY_VECTOR(...)                                                    \
	({                                                                     \
		expect_exception(ANY_VECTOR);                                  \
		asm volatile(__VA_ARGS__);                                     \
		exception_caught() ? last_exception.vector : NO_EXCEPTION;     \
	})

/* Register state pushed by lib/isr.S, lowest address first. */
struct intr_frame {
#ifdef __x86_64__
	unsigned long r15, r14, r13, r12, r11, r10, r9, r8;
	unsigned long rdi, rsi, rbp, rbx, rdx, rcx, rax;
#else
	unsigned long edi, esi, ebp, esp_unused, ebx, edx, ecx, eax;
#endif
	unsigned long vector, error_code;
	unsigned long ip, cs, flags;
#ifdef __x86_64__
	unsigned long sp, ss;		/* 64-bit mode always pushes them */
#endif
};

/*
 * Called first for every exception (vectors below IRQ_VECTOR_BASE), before ASM_TRY recovery:
 * returns true if it handled the exception (the frame, possibly changed, is resumed), false
 * to let the library carry on. For handlers that fix the cause and retry, e.g. a #PF handler
 * doing copy-on-write (lib/paging.c, lib/usermode.c).
 */
extern bool (*exception_hook)(struct intr_frame *frame);

/* --- Interrupts: 8259A PIC and 8254 PIT, lib/irq.c ------------------------------------------ */

#define PIT_HZ 1193182u

/* ICW1-ICW4: master IRQs at IRQ_VECTOR_BASE, slave at +8, everything masked. */
void pic_init(void);
void pic_mask(unsigned int irq);
void pic_unmask(unsigned int irq);
/* Called from the interrupt handler, IF=0; the library sends the EOI afterwards. */
void irq_set_handler(unsigned int irq, void (*handler)(unsigned int irq));
/* PIT channel 0 periodic (mode 2) at about `hz` interrupts per second. */
void pit_periodic(u32 hz);
/* PIT channel 0 one-shot (mode 0): one IRQ0 edge after `count` PIT ticks. */
void pit_oneshot(u16 count);

/* --- CPU helpers: lib/cpu.c ----------------------------------------------------------------- */

/* RDMSR/WRMSR that survive a #GP: return true if the access faulted (*val is then 0). */
bool rdmsr_safe(u32 msr, u64 *val);
bool wrmsr_safe(u32 msr, u64 val);

/* CPUID leaf 1 ECX bit 31 and the 0x40000000 signature "UmbraUmbraHV". */
bool is_umbra(void);

/* Hypercalls (guest-platform contract, "VMCALL hypercalls"). */
#define HC_PING 0
#define HC_PUTS 1
#define HC_EXIT 2
#define HC_STAT 3
#define HC_CAPS 4	/* RAX: feature bits (bit 5 = preemption timer, bit 6 = EPT for this guest) */
#define HC_PING_MAGIC 0x554d4252	/* 'UMBR' */
#define HC_STAT_EXITS(reason) (0x100 + (reason))
#define EXIT_REASON_CPUID 10
#define EXIT_REASON_VMCALL 18
#define HC_ENOSYS (-38)

/* Returns RAX. Outside umbra VMCALL raises #UD, which this treats as unexpected. */
long vmcall(unsigned long func, unsigned long a, unsigned long b, unsigned long c);
/* In/out registers of a VMCALL; returns true if it raised #UD instead. */
struct vmcall_regs {
	unsigned long ax, bx, cx, dx;
};
bool vmcall_safe(struct vmcall_regs *regs);

/* n / d and n % d without libgcc's 64-bit division helpers (absent in 32-bit builds). */
u64 udiv64(u64 n, u32 d, u32 *rem);

/* --- Multiboot info and RAM: lib/multiboot.c ------------------------------------------------ */

struct multiboot_info {
	u32 flags;
	u32 mem_lower, mem_upper;	/* KiB below 1 MiB / above 1 MiB */
	u32 boot_device;
	u32 cmdline;
	u32 mods_count, mods_addr;
	u32 syms[4];
	u32 mmap_length, mmap_addr;
	u32 drives_length, drives_addr;
	u32 config_table;
	u32 boot_loader_name;
} PACKED;

#define MB_INFO_MEM BIT(0)
#define MB_INFO_CMDLINE BIT(2)
#define MB_INFO_MODS BIT(3)
#define MB_INFO_MMAP BIT(6)
#define MB_INFO_LOADER_NAME BIT(9)

struct multiboot_mmap_entry {
	u32 size;			/* of the rest of the entry, not counting this field */
	u64 addr, len;
	u32 type;			/* 1 = RAM */
} PACKED;

/* NULL if the loader gave none (wrong magic). */
const struct multiboot_info *mb_info(void);
/* End of RAM: 1 MiB + mem_upper KiB (0 without MB_INFO_MEM). */
u64 ram_end(void);
/* "" if none. The contract makes it "<name> <args>". */
const char *cmdline(void);
/* True if a whitespace-separated word of the command line equals `word`. */
bool cmdline_has(const char *word);
/* Parses "key=value" (decimal or 0x hex); false if the key is absent or malformed. */
bool cmdline_get_u64(const char *key, u64 *val);

/* The image as linked (lib/linker.ld): [0x100000, image_end()). */
unsigned long image_start(void);
unsigned long image_end(void);

/*
 * Calls fn for each RAM range in [min, max) that holds nothing of this kernel: memory-map
 * RAM (or [1 MiB, ram_end()) without a map) minus the image and the multiboot structures,
 * all rounded out to 4 KiB pages. In 32-bit builds max is clipped to 4 GiB.
 */
void for_each_free_ram(u64 min, u64 max, void (*fn)(u64 start, u64 end, void *ctx), void *ctx);

/* --- RAM patterns for memtest/isolation: lib/ram.c ------------------------------------------ */

/* Writes word i of [start, end) as (address ^ xor); returns bytes written. */
u64 pattern_fill(u64 start, u64 end, u64 xor);
/* Counts words that differ from (address ^ xor), printing the first few. */
u64 pattern_check(u64 start, u64 end, u64 xor);
/* Counts nonzero words, printing the first few. */
u64 zero_check(u64 start, u64 end);

/* --- Strings: lib/string.c (gcc may emit calls to the first four) --------------------------- */

void *memset(void *s, int c, size_t n);
void *memcpy(void *dst, const void *src, size_t n);
void *memmove(void *dst, const void *src, size_t n);
int memcmp(const void *a, const void *b, size_t n);
size_t strlen(const char *s);
int strncmp(const char *a, const char *b, size_t n);

/* --- Provided by each test kernel ----------------------------------------------------------- */

int main(void);

#endif
