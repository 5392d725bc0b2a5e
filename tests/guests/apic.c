/*
 * The local xAPIC of the platform contract (kvm-unit-tests' x86 platform, see
 * tests/guests/README.md): IA32_APIC_BASE; the ID, version, SVR, TPR/PPR, ESR and ICR
 * registers; self-IPIs (shorthand and physical destination) delivered in priority order,
 * held back by the TPR, with ISR set in the handler and cleared by EOI; the timer in one-shot,
 * periodic and TSC-deadline modes, masked, and waking HLT. apic64 also checks CR8 as the TPR.
 * The 8259 PIC gets only mask writes: no PIC IRQ may arrive.
 */
#include "libguest.h"
#include "platform.h"

#define MAX_EVENTS 32
#define MAX_WAIT_US 50000	/* for anything that should take 1-5 ms */

/* One interrupt as the handler saw it. */
struct irq_event {
	unsigned int vector;
	bool in_service;	/* the vector's ISR bit was set inside the handler */
	u64 tsc;
};

static volatile struct irq_event events[MAX_EVENTS];
static volatile unsigned int nr_events;
static volatile unsigned int nr_pic_irqs;

static void log_interrupt(unsigned int vector)
{
	unsigned int n = nr_events;

	if (n < MAX_EVENTS) {
		events[n].vector = vector;
		events[n].in_service = apic_vector_bit(APIC_ISR, vector);
		events[n].tsc = rdtsc();
	}
	nr_events = n + 1;
	apic_eoi();
}

static void count_pic_irq(unsigned int irq)
{
	(void)irq;
	nr_pic_irqs++;
}

/* Lets interrupts in until `n` have been logged or `us` microseconds have passed. */
static void wait_events(unsigned int n, u32 us)
{
	u64 end = rdtsc() + tsc_us(us);

	sti();
	while (nr_events < n && rdtsc() < end)
		pause();
	cli();
}

static void reset_events(void)
{
	nr_events = 0;
}

static void send_ipi(u32 icr_low)
{
	apic_write(APIC_ICR_LOW, icr_low);
}

static void check_apic_base(void)
{
	u64 base;
	bool gp = rdmsr_safe(MSR_IA32_APIC_BASE, &base);

	report(!gp && (base & ~0xfffull) == APIC_DEFAULT_BASE,
	       "IA32_APIC_BASE %#llx: base 0xfee00000", base);
	report(base & APIC_BASE_ENABLE, "IA32_APIC_BASE: global enable (bit 11) set");
	report(base & APIC_BASE_BSP, "IA32_APIC_BASE: BSP (bit 8) set");
	report(!wrmsr_safe(MSR_IA32_APIC_BASE, base) && rdmsr(MSR_IA32_APIC_BASE) == base,
	       "IA32_APIC_BASE: writing back the same value is accepted");
	report(cpuid(1, 0).edx & BIT(9), "CPUID.1:EDX.APIC[9] set");
}

/*
 * IA32_APIC_BASE[11] = 0 (SDM Vol. 3A 11.4.3): the CPU acts as one without an APIC.
 * CPUID.1:EDX.APIC reads 0, the APIC page is open bus (a page-wide fill is absorbed,
 * reads are all-ones; kvm-unit-tests' xapic accepts all-ones or 0), and the guest goes
 * on. Set again, the APIC answers as before.
 */
static void check_global_disable(void)
{
	volatile u32 *version = (volatile u32 *)(APIC_DEFAULT_BASE + APIC_VERSION);
	volatile u32 *tpr = (volatile u32 *)(APIC_DEFAULT_BASE + APIC_TPR);
	u64 base = rdmsr(MSR_IA32_APIC_BASE);
	u32 before = *version;
	bool no_apic;

	wrmsr(MSR_IA32_APIC_BASE, base & ~APIC_BASE_ENABLE);
	no_apic = !(cpuid(1, 0).edx & BIT(9));
	memset((void *)APIC_DEFAULT_BASE, 0xff, 4096);
	report(no_apic && *version == ~0u && *tpr == ~0u,
	       "APIC globally disabled: CPUID.1:EDX.APIC clear, its page reads all-ones "
	       "after a page-wide fill (version %#x, TPR %#x)", *version, *tpr);
	wrmsr(MSR_IA32_APIC_BASE, base);
	report(rdmsr(MSR_IA32_APIC_BASE) == base && *version == before &&
	       (cpuid(1, 0).edx & BIT(9)),
	       "APIC enabled again: version %#x as before, CPUID.1:EDX.APIC set", *version);
}

static void check_registers(void)
{
	u32 id = apic_read(APIC_ID) >> 24, version = apic_read(APIC_VERSION);
	u32 max_lvt = (version >> 16) & 0xff;
	static const u32 tprs[] = { 0x20, 0x35, 0xf0, 0x00 };
	bool tpr_ok = true;

	report(id == cpuid(1, 0).ebx >> 24, "APIC ID %u = CPUID.1:EBX[31:24] initial APIC ID", id);
	report((version & 0xff) >= 0x10 && (version & 0xff) <= 0x15 && max_lvt >= 3 && max_lvt <= 6,
	       "version %#x: integrated APIC (0x10-0x15), %u LVT entries", version & 0xff,
	       max_lvt + 1);

	apic_write(APIC_SVR, APIC_SVR_ENABLE | 0xff);
	report((apic_read(APIC_SVR) & 0x1ff) == (APIC_SVR_ENABLE | 0xff),
	       "SVR: software enable (bit 8) and spurious vector 0xff read back");

	for (unsigned int i = 0; i < ARRAY_SIZE(tprs); i++) {
		apic_write(APIC_TPR, tprs[i]);
		if (apic_read(APIC_TPR) != tprs[i]) {
			printf("TPR wrote %#x, read %#x\n", tprs[i], apic_read(APIC_TPR));
			tpr_ok = false;
		}
	}
	report(tpr_ok, "TPR: 0x20, 0x35, 0xf0, 0 read back");

	apic_write(APIC_ESR, 0);
	report(apic_read(APIC_ESR) == 0, "ESR reads 0 (no errors) after a write");

	apic_write(APIC_ICR_HIGH, 0x05000000);
	report(apic_read(APIC_ICR_HIGH) == 0x05000000, "ICR high (destination) reads back");
	apic_write(APIC_ICR_HIGH, 0);
}

/*
 * Accesses the xAPIC does not define (SDM 11.4.1: 32-bit, 16-byte aligned) read the
 * register bytes they cover and zeros, and writes are dropped (umbra; KVM alike): the
 * guest goes on. On bare metal they are undefined, so only under umbra.
 */
static void check_odd_accesses(void)
{
	volatile u8 *apic = (volatile u8 *)APIC_DEFAULT_BASE;
	u32 id = apic_read(APIC_ID), tpr = apic_read(APIC_TPR);
	u16 low = *(volatile u16 *)(apic + APIC_ID + 2);
	u8 beyond = apic[APIC_ID + 5];

	if (!is_umbra()) {
		report_skip("odd-sized xAPIC accesses: undefined outside umbra");
		return;
	}
	report(low == (u16)(id >> 16), "16-bit read of ID bits 31:16: %#x", low);
	report(beyond == 0, "a byte past a register's 32 bits reads 0");
#ifdef __x86_64__
	u64 wide = *(volatile u64 *)(apic + APIC_ID);

	report(wide == id, "64-bit read of ID: the register, then zeros (%#llx)",
	       (unsigned long long)wide);
	*(volatile u64 *)(apic + APIC_TPR) = 0x20;
	report(apic_read(APIC_TPR) == tpr, "64-bit write to TPR is dropped");
#endif
	*(volatile u32 *)(apic + APIC_TPR + 2) = 0x30;
	report(apic_read(APIC_TPR) == tpr, "a write straddling a register's end is dropped");
}

static bool events_are(const unsigned int *vectors, unsigned int n)
{
	if (nr_events != n)
		return false;
	for (unsigned int i = 0; i < n; i++)
		if (events[i].vector != vectors[i] || !events[i].in_service)
			return false;
	return true;
}

static void print_events(void)
{
	for (unsigned int i = 0; i < nr_events && i < MAX_EVENTS; i++)
		printf("  event %u: vector %#x%s\n", i, events[i].vector,
		       events[i].in_service ? ", in service" : ", ISR bit clear");
}

static void check_self_ipi(void)
{
	static const unsigned int one[] = { 0x40 }, prio[] = { 0x70, 0x60, 0x50 };
	u32 id = apic_read(APIC_ID) >> 24;
	bool ok;

	reset_events();
	send_ipi(APIC_ICR_DEST_SELF | 0x40);
	report(!(apic_read(APIC_ICR_LOW) & APIC_ICR_BUSY), "ICR delivery status reads idle");
	report(apic_vector_bit(APIC_IRR, 0x40) && nr_events == 0,
	       "self-IPI 0x40 with IF=0: pending in IRR, not delivered");
	wait_events(1, MAX_WAIT_US);
	report(events_are(one, 1), "self-IPI 0x40 delivered once after STI, ISR bit set in the "
	       "handler");
	report(!apic_vector_bit(APIC_ISR, 0x40) && !apic_vector_bit(APIC_IRR, 0x40),
	       "EOI cleared ISR bit 0x40, IRR clear");

	reset_events();
	apic_write(APIC_ICR_HIGH, id << 24);
	send_ipi(0x41);		/* fixed, physical destination = our own APIC ID */
	wait_events(1, MAX_WAIT_US);
	report(nr_events == 1 && events[0].vector == 0x41,
	       "IPI 0x41 to our own APIC ID (no shorthand) delivered");
	apic_write(APIC_ICR_HIGH, 0);

	reset_events();
	send_ipi(APIC_ICR_DEST_ALL_INCL_SELF | 0x42);
	wait_events(1, MAX_WAIT_US);
	report(nr_events == 1 && events[0].vector == 0x42,
	       "IPI 0x42 to all including self delivered once");

	reset_events();
	send_ipi(APIC_ICR_DEST_SELF | 0x50);
	send_ipi(APIC_ICR_DEST_SELF | 0x70);
	send_ipi(APIC_ICR_DEST_SELF | 0x60);
	wait_events(3, MAX_WAIT_US);
	ok = events_are(prio, 3);
	report(ok, "self-IPIs 0x50, 0x70, 0x60 sent with IF=0 arrive as 0x70, 0x60, 0x50");
	if (!ok)
		print_events();
}

static void check_tpr_blocking(void)
{
	reset_events();
	apic_write(APIC_TPR, 0x50);
	report(apic_read(APIC_PPR) == 0x50, "PPR = TPR 0x50 with nothing in service");
	send_ipi(APIC_ICR_DEST_SELF | 0x48);
	send_ipi(APIC_ICR_DEST_SELF | 0x58);
	wait_events(1, 1000);
	report(nr_events == 0 && apic_vector_bit(APIC_IRR, 0x48) && apic_vector_bit(APIC_IRR, 0x58),
	       "TPR 0x50 holds back vectors 0x48 and 0x58 (class <= 5) in IRR");
	send_ipi(APIC_ICR_DEST_SELF | 0x68);
	wait_events(1, MAX_WAIT_US);
	report(nr_events == 1 && events[0].vector == 0x68, "TPR 0x50 lets vector 0x68 through");
	apic_write(APIC_TPR, 0);
	wait_events(3, MAX_WAIT_US);
	report(nr_events == 3 && events[1].vector == 0x58 && events[2].vector == 0x48,
	       "TPR 0: the held-back 0x58 and 0x48 arrive, in that order");
}

#ifdef __x86_64__
static unsigned long read_cr8(void)
{
	unsigned long v;

	asm volatile("mov %%cr8, %0" : "=r"(v));
	return v;
}

static void write_cr8(unsigned long v)
{
	asm volatile("mov %0, %%cr8" : : "r"(v) : "memory");
}

/* SDM Vol. 3A 11.8.6: CR8[3:0] is TPR[7:4], in both directions. */
static void check_cr8(void)
{
	write_cr8(5);
	report(read_cr8() == 5 && apic_read(APIC_TPR) >> 4 == 5,
	       "CR8 = 5 reads back and shows as TPR %#x", apic_read(APIC_TPR));
	apic_write(APIC_TPR, 0x30);
	report(read_cr8() == 3, "TPR = 0x30 reads as CR8 = %lu", read_cr8());
	write_cr8(15);
	report(apic_read(APIC_TPR) >> 4 == 15, "CR8 = 15 shows as TPR %#x", apic_read(APIC_TPR));

	reset_events();
	write_cr8(6);
	send_ipi(APIC_ICR_DEST_SELF | 0x68);
	wait_events(1, 1000);
	report(nr_events == 0, "CR8 = 6 holds back vector 0x68");
	write_cr8(0);
	wait_events(1, MAX_WAIT_US);
	report(nr_events == 1 && events[0].vector == 0x68 && apic_read(APIC_TPR) == 0,
	       "CR8 = 0 releases vector 0x68, TPR reads 0");
}
#else
static void check_cr8(void)
{
	report_skip("CR8: 64-bit only (apic64)");
}
#endif

/*
 * Timer counts per millisecond of TSC at a divide configuration (0: not counting); the lowest
 * of three tries, since a host that deschedules an emulated CPU only adds counts.
 */
static u32 timer_per_ms(u32 divide)
{
	u32 before, after, best = ~0u;
	u64 end;

	apic_write(APIC_LVT_TIMER, APIC_LVT_MASKED | 0x80);
	apic_write(APIC_TIMER_DIVIDE, divide);
	for (int i = 0; i < 3; i++) {
		apic_write(APIC_TIMER_INITIAL, 0xffffffff);
		before = apic_read(APIC_TIMER_CURRENT);
		end = rdtsc() + tsc_us(1000);
		while (rdtsc() < end)
			pause();
		after = apic_read(APIC_TIMER_CURRENT);
		if (before <= after)
			best = 0;
		else if (before - after < best)
			best = before - after;
	}
	apic_write(APIC_TIMER_INITIAL, 0);
	return best;
}

static void check_timer_oneshot(u32 per_ms)
{
	u64 start, min_delay = tsc_us(500);

	reset_events();
	apic_write(APIC_LVT_TIMER, APIC_TIMER_ONESHOT | 0x80);
	start = rdtsc();
	apic_write(APIC_TIMER_INITIAL, per_ms);
	report(apic_read(APIC_TIMER_CURRENT) <= per_ms && apic_read(APIC_TIMER_INITIAL) == per_ms,
	       "one-shot: initial count reads back, current count <= initial");
	wait_events(1, MAX_WAIT_US);
	wait_events(2, 3000);		/* no second one */
	report(nr_events == 1 && events[0].vector == 0x80 && events[0].in_service,
	       "one-shot 1 ms: exactly one interrupt (%u)", nr_events);
	report(nr_events >= 1 && events[0].tsc - start >= min_delay,
	       "one-shot: not early (%llu us after arming)",
	       nr_events ? tsc_to_us(events[0].tsc - start) : 0);
	report(apic_read(APIC_TIMER_CURRENT) == 0, "one-shot: current count 0 after expiry");
}

static void check_timer_periodic(u32 per_ms)
{
	u64 start, period = tsc_us(1000);
	bool in_order = true;
	u32 current;
	unsigned int n;

	reset_events();
	apic_write(APIC_LVT_TIMER, APIC_TIMER_PERIODIC | 0x81);
	start = rdtsc();
	apic_write(APIC_TIMER_INITIAL, per_ms);
	wait_events(5, MAX_WAIT_US * 2);
	current = apic_read(APIC_TIMER_CURRENT);
	apic_write(APIC_TIMER_INITIAL, 0);		/* stops the timer */
	n = nr_events;
	report(n >= 5, "periodic 1 ms: %u interrupts", n);
	report(current > 0 && current <= per_ms, "periodic: current count reloads (%u of %u)",
	       current, per_ms);
	/* Tick k is due k periods after arming: never earlier (allowing the calibration's error). */
	for (unsigned int i = 0; i < n && i < 5; i++) {
		if (events[i].vector != 0x81 || events[i].tsc - start < (i + 1) * period * 3 / 4 ||
		    (i && events[i].tsc <= events[i - 1].tsc))
			in_order = false;
	}
	report(in_order, "periodic: tick k arrives no earlier than k periods after arming, in "
	       "TSC order");
	wait_events(n + 1, 3000);
	report(nr_events == n, "periodic: initial count 0 stops it (%u more)", nr_events - n);
}

static void check_timer_masked(u32 per_ms)
{
	reset_events();
	apic_write(APIC_LVT_TIMER, APIC_LVT_MASKED | APIC_TIMER_ONESHOT | 0x82);
	apic_write(APIC_TIMER_INITIAL, per_ms / 2);
	wait_events(1, 2000);
	report(nr_events == 0 && !apic_vector_bit(APIC_IRR, 0x82),
	       "masked one-shot: no interrupt, nothing in IRR");
	report(apic_read(APIC_TIMER_CURRENT) == 0, "masked one-shot: still counted down to 0");
}

static void check_timer_divide(u32 per_ms)
{
	u32 per_ms_16 = timer_per_ms(0x3);	/* divide by 16 */

	report(per_ms_16 * 8 <= per_ms && per_ms <= per_ms_16 * 32,
	       "divide by 16 counts %u per ms vs %u at divide by 1", per_ms_16, per_ms);
	apic_write(APIC_TIMER_DIVIDE, 0x3);
	report(apic_read(APIC_TIMER_DIVIDE) == 0x3, "divide configuration reads back");
	apic_write(APIC_TIMER_DIVIDE, APIC_TIMER_DIVIDE_1);
}

static void check_hlt_wakeup(u32 per_ms)
{
	unsigned int halts = 0;

	reset_events();
	apic_write(APIC_LVT_TIMER, APIC_TIMER_ONESHOT | 0x84);
	apic_write(APIC_TIMER_INITIAL, per_ms);
	while (nr_events == 0 && halts < 10) {
		safe_halt();
		cli();
		halts++;
	}
	report(nr_events == 1 && halts == 1, "STI; HLT woken by the one-shot timer (%u HLTs)",
	       halts);
}

static void check_tsc_deadline(void)
{
	u64 deadline, readback;

	if (!(cpuid(1, 0).ecx & BIT(24))) {
		report_umbra(false, "CPUID.1:ECX.TSC_DEADLINE[24] set");
		report_skip("TSC-deadline timer: not offered here");
		return;
	}
	reset_events();
	apic_write(APIC_LVT_TIMER, APIC_TIMER_TSC_DEADLINE | 0x83);
	deadline = rdtsc() + tsc_us(1000);
	wrmsr(MSR_IA32_TSC_DEADLINE, deadline);
	readback = rdmsr(MSR_IA32_TSC_DEADLINE);
	wait_events(1, MAX_WAIT_US);
	wait_events(2, 2000);
	report(readback == deadline || (readback == 0 && nr_events), "IA32_TSC_DEADLINE reads back");
	report(nr_events == 1 && events[0].vector == 0x83,
	       "TSC deadline +1 ms: exactly one interrupt (%u)", nr_events);
	report(nr_events >= 1 && events[0].tsc >= deadline, "TSC deadline: not before the deadline");
	report(rdmsr(MSR_IA32_TSC_DEADLINE) == 0, "IA32_TSC_DEADLINE reads 0 after it fired");

	reset_events();
	wrmsr(MSR_IA32_TSC_DEADLINE, rdtsc() + tsc_us(1000));
	wrmsr(MSR_IA32_TSC_DEADLINE, 0);
	wait_events(1, 3000);
	report(nr_events == 0, "TSC deadline: writing 0 disarms it");

	reset_events();
	wrmsr(MSR_IA32_TSC_DEADLINE, 1);
	wait_events(1, MAX_WAIT_US);
	report(nr_events == 1, "TSC deadline in the past fires at once");

	reset_events();
	wrmsr(MSR_IA32_TSC_DEADLINE, rdtsc() + tsc_us(1000));
	apic_write(APIC_LVT_TIMER, APIC_TIMER_ONESHOT | 0x83);
	wait_events(1, 3000);
	report(nr_events == 0, "TSC deadline: switching the LVT to one-shot disarms it");
}

static void check_timer(void)
{
	u64 hz = tsc_hz();
	u32 per_ms;

	report(hz >= 1000000, "TSC rate %llu kHz, measured with PIT channel 2",
	       udiv64(hz, 1000, NULL));
	if (hz < 1000000)
		return;
	apic_write(APIC_TIMER_DIVIDE, APIC_TIMER_DIVIDE_1);
	per_ms = timer_per_ms(APIC_TIMER_DIVIDE_1);
	report(per_ms >= 1000, "timer counts %u per ms at divide by 1", per_ms);
	if (per_ms < 1000)
		return;
	check_timer_oneshot(per_ms);
	check_timer_periodic(per_ms);
	check_timer_masked(per_ms);
	check_timer_divide(per_ms);
	check_tsc_deadline();
	check_hlt_wakeup(per_ms);
	apic_write(APIC_LVT_TIMER, APIC_LVT_MASKED);
}

int main(void)
{
	pic_init();		/* every 8259 line masked: writes only */
	for (unsigned int irq = 0; irq < 16; irq++)
		irq_set_handler(irq, count_pic_irq);
	apic_vectors_init();
	for (unsigned int v = 0x40; v <= 0x84; v++)
		apic_set_handler(v, log_interrupt);

	check_apic_base();
	check_registers();
	check_odd_accesses();
	check_self_ipi();
	check_tpr_blocking();
	check_cr8();
	check_global_disable();
	check_timer();

	report(nr_pic_irqs == 0, "no 8259 IRQ arrived with all lines masked (%u)", nr_pic_irqs);
	report(apic_unhandled == 0, "no interrupt at an unexpected vector (%u)", apic_unhandled);
	return report_summary();
}
