/*
 * Several CPUs in a guest test kernel (see smp.h). The BSP starts each AP by its APIC ID
 * with INIT, STARTUP, STARTUP through the ICR (SDM Vol. 3A 9.4.4.1, 11.6.1) to the copy of
 * lib/smp_tramp.S below 1 MiB; each AP then runs smp_ap_entry() on its own stack and waits
 * for work from on_cpus(). A CPU knows its index from the stack it runs on, so nothing
 * per-CPU needs a segment base or an APIC read.
 */
#include "internal.h"
#include "platform.h"
#include "smp.h"

#define FW_CFG_PORT_SEL 0x510
#define FW_CFG_PORT_DATA 0x511
#define FW_CFG_NB_CPUS 0x05

unsigned int fw_cfg_cpu_count(void)
{
	unsigned int lo, hi;

	outw(FW_CFG_PORT_SEL, FW_CFG_NB_CPUS);
	lo = inb(FW_CFG_PORT_DATA);
	hi = inb(FW_CFG_PORT_DATA);
	return lo | hi << 8;
}

#ifdef __x86_64__
#define MSR_EFER 0xc0000080
#define EFER_LMA BIT(10)
#define ICR_INIT (5u << 8)
#define ICR_STARTUP (6u << 8)
#define ICR_ASSERT BIT(14)
#define ICR_ALL_BUT_SELF (3u << 18)

extern const u8 smp_tramp_start[], smp_tramp_end[], smp_tramp_gdt[], smp_tramp_cr0[],
	smp_tramp_cr3[], smp_tramp_cr4[], smp_tramp_efer[], smp_tramp_stack[], smp_tramp_entry[];

static u8 ap_stacks[SMP_MAX_CPUS][SMP_AP_STACK] __attribute__((aligned(16)));
static unsigned int ncpus = 1;
static volatile bool online[SMP_MAX_CPUS];
static volatile u32 apic_id_of[SMP_MAX_CPUS];
static struct descriptor_ptr bsp_idt;

/* on_cpus(): per AP, the work and two counters (handed out, finished). */
static struct {
	void (*volatile fn)(void *arg);
	void *volatile arg;
	volatile u32 go, done;
} work[SMP_MAX_CPUS];

unsigned int smp_id(void)
{
	unsigned long sp = (unsigned long)__builtin_frame_address(0);
	unsigned long base = (unsigned long)ap_stacks;

	if (sp > base && sp <= base + sizeof(ap_stacks))
		return (unsigned int)((sp - base - 1) / SMP_AP_STACK);
	return 0;
}

unsigned int cpu_count(void)
{
	return ncpus;
}

void smp_ap_entry(void);	/* from lib/smp_tramp.S */

void smp_ap_entry(void)
{
	unsigned int me = smp_id();
	u32 seen = 0;

	lidt(&bsp_idt);
	apic_write(APIC_SVR, APIC_SVR_ENABLE | 0xff);
	apic_write(APIC_TPR, 0);
	apic_id_of[me] = apic_read(APIC_ID) >> 24;
	__atomic_store_n(&online[me], true, __ATOMIC_RELEASE);
	sti();
	for (;;) {
		while (__atomic_load_n(&work[me].go, __ATOMIC_ACQUIRE) == seen)
			pause();
		seen = work[me].go;
		work[me].fn(work[me].arg);
		__atomic_store_n(&work[me].done, seen, __ATOMIC_RELEASE);
	}
}

/* One IPI through the ICR, interrupts off so a handler's IPI cannot come between. */
static void icr_send(u32 dest, u32 low)
{
	unsigned long flags = read_flags();

	cli();
	apic_write(APIC_ICR_HIGH, dest << 24);
	apic_write(APIC_ICR_LOW, low);
	while (apic_read(APIC_ICR_LOW) & APIC_ICR_BUSY)
		pause();
	if (flags & BIT(9))
		sti();
}

void ipi_send(unsigned int cpu, unsigned int vector)
{
	icr_send(cpu, vector);
}

void ipi_send_all_but_self(unsigned int vector)
{
	icr_send(0, ICR_ALL_BUT_SELF | vector);
}

static void delay_us(u32 us)
{
	u64 end = rdtsc() + tsc_us(us);

	while (rdtsc() < end)
		pause();
}

#define TRAMP(sym, type) (*(type *)(SMP_TRAMP_ADDR + (unsigned long)((sym) - smp_tramp_start)))

static bool start_ap(unsigned int id)
{
	u32 sipi = ICR_STARTUP | ICR_ASSERT | (SMP_TRAMP_ADDR >> 12);
	u64 deadline;

	TRAMP(smp_tramp_stack, u64) = (u64)(unsigned long)&ap_stacks[id][SMP_AP_STACK];
	icr_send(id, ICR_INIT | ICR_ASSERT);
	delay_us(10000);
	icr_send(id, sipi);
	delay_us(200);
	icr_send(id, sipi);	/* ignored by an AP already started */
	deadline = rdtsc() + tsc_us(1000000);
	while (!__atomic_load_n(&online[id], __ATOMIC_ACQUIRE))
		if (rdtsc() > deadline)
			return false;
	return true;
}

unsigned int smp_init(unsigned int want)
{
	unsigned int n = fw_cfg_cpu_count(), id;
	struct descriptor_ptr gdt;
	bool ids_ok = true;

	if (n > SMP_MAX_CPUS) {
		printf("smp: fw_cfg says %u CPUs, using %u\n", n, SMP_MAX_CPUS);
		n = SMP_MAX_CPUS;
	}
	if (want && want < n)
		n = want;
	report((apic_read(APIC_ID) >> 24) == 0, "smp: the BSP's APIC ID is 0");
	tsc_hz();		/* calibrated before the APs may print */
	sidt(&bsp_idt);
	asm volatile("sgdt %0" : "=m"(gdt));
	memcpy((void *)SMP_TRAMP_ADDR, smp_tramp_start, smp_tramp_end - smp_tramp_start);
	TRAMP(smp_tramp_gdt, u16) = gdt.limit;
	TRAMP(smp_tramp_gdt + 2, u32) = (u32)gdt.base;
	TRAMP(smp_tramp_cr0, u32) = (u32)read_cr0();
	TRAMP(smp_tramp_cr3, u32) = (u32)read_cr3();
	TRAMP(smp_tramp_cr4, u32) = (u32)read_cr4();
	TRAMP(smp_tramp_efer, u32) = (u32)(rdmsr(MSR_EFER) & ~EFER_LMA);
	TRAMP(smp_tramp_entry, u64) = (u64)(unsigned long)smp_ap_entry;
	for (id = 1; id < n; id++) {
		if (!start_ap(id))
			break;
		ids_ok &= apic_id_of[id] == id;
	}
	report(id == n, "smp: %u of %u CPUs started by INIT-SIPI-SIPI", id, n);
	report(ids_ok, "smp: each AP's APIC ID is its index");
	ncpus = id;
	return ncpus;
}

void on_cpus(void (*fn)(void *arg), void *arg)
{
	for (unsigned int i = 1; i < ncpus; i++) {
		work[i].fn = fn;
		work[i].arg = arg;
		__atomic_add_fetch(&work[i].go, 1, __ATOMIC_SEQ_CST);
	}
	fn(arg);
	for (unsigned int i = 1; i < ncpus; i++)
		while (__atomic_load_n(&work[i].done, __ATOMIC_ACQUIRE) != work[i].go)
			pause();
}

void spin_lock(struct spinlock *l)
{
	while (__atomic_exchange_n(&l->taken, 1, __ATOMIC_ACQUIRE))
		while (__atomic_load_n(&l->taken, __ATOMIC_RELAXED))
			pause();
}

void spin_unlock(struct spinlock *l)
{
	__atomic_store_n(&l->taken, 0, __ATOMIC_RELEASE);
}

static volatile u32 barrier_count, barrier_sense;

void smp_barrier(void)
{
	u32 sense = __atomic_load_n(&barrier_sense, __ATOMIC_ACQUIRE);

	if (__atomic_add_fetch(&barrier_count, 1, __ATOMIC_ACQ_REL) == ncpus) {
		__atomic_store_n(&barrier_count, 0, __ATOMIC_RELAXED);
		__atomic_store_n(&barrier_sense, !sense, __ATOMIC_RELEASE);
	} else {
		while (__atomic_load_n(&barrier_sense, __ATOMIC_ACQUIRE) == sense)
			pause();
	}
}
#else
/* 32-bit builds run on the BSP alone. */
unsigned int smp_id(void)
{
	return 0;
}
#endif
