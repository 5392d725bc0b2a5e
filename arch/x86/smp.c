/* Per-CPU data and the host local APIC for starting CPUs (see smp.h). */
#include "arch/x86/smp.h"
#include "arch/x86/cpu.h"
#include "arch/x86/machine.h"

#define APIC_BASE_X2APIC BIT(10)
#define APIC_BASE_ADDR_MASK 0x000ffffffffff000ull
#define XAPIC_ID 0x20
#define XAPIC_ICR_LOW 0x300
#define XAPIC_ICR_HIGH 0x310
#define XAPIC_EOI 0xb0
#define XAPIC_SVR 0xf0
#define X2APIC_ID_MSR 0x802
#define X2APIC_EOI_MSR 0x80b
#define X2APIC_SVR_MSR 0x80f
#define X2APIC_ICR_MSR 0x830
#define SVR_ENABLE BIT(8)
#define SPURIOUS_VECTOR 0xff
#define ICR_FIXED 0x00004000u     /* fixed, level assert, physical destination */
#define ICR_INIT 0x00004500u      /* INIT, level assert, edge (SDM 11.6.1) */
#define ICR_STARTUP 0x00004600u   /* start-up IPI; vector = page number */
#define ICR_PENDING BIT(12)       /* delivery status: send pending */
#define INIT_DELAY_US 10000       /* SDM 9.4.4.1: 10 ms after INIT */
#define SIPI_DELAY_US 200         /* ... and 200 us after each SIPI */

struct cpu_local cpu_locals[SMP_MAX_CPUS];
static u32 cpus_started = 1;
static volatile u32 *xapic;
static bool x2apic;

void percpu_init(u32 index, u32 apic_id)
{
	struct cpu_local *c = &cpu_locals[index];

	c->self = c;
	c->index = index;
	c->apic_id = apic_id;
	wrmsr(MSR_GS_BASE, (u64)c);
}

u32 smp_cpu_count(void)
{
	return __atomic_load_n(&cpus_started, __ATOMIC_ACQUIRE);
}

void smp_cpu_started(void)
{
	__atomic_fetch_add(&cpus_started, 1, __ATOMIC_RELEASE);
}

static void (*ap_work)(void);

void smp_park(void)
{
	void (*fn)(void);

	while (!(fn = __atomic_load_n(&ap_work, __ATOMIC_ACQUIRE)))
		pause();
	fn();
}

void smp_release_aps(void (*fn)(void))
{
	__atomic_store_n(&ap_work, fn, __ATOMIC_RELEASE);
}

void host_apic_init(void)
{
	u64 base = rdmsr(MSR_IA32_APIC_BASE);

	x2apic = base & APIC_BASE_X2APIC;
	xapic = (volatile u32 *)(base & APIC_BASE_ADDR_MASK);
}

u32 host_apic_id(void)
{
	return x2apic ? (u32)rdmsr(X2APIC_ID_MSR) : xapic[XAPIC_ID / 4] >> 24;
}

static void delay_us(u64 us)
{
	u64 end = rdtsc() + us * machine_timing_khz() / 1000;

	while (rdtsc() < end)
		pause();
}

static bool send_ipi(u32 apic_id, u32 icr)
{
	if (x2apic) {
		wrmsr(X2APIC_ICR_MSR, (u64)apic_id << 32 | icr);
		return true;
	}
	xapic[XAPIC_ICR_HIGH / 4] = apic_id << 24;
	xapic[XAPIC_ICR_LOW / 4] = icr;
	for (int i = 0; i < 1000000; i++) {
		if (!(xapic[XAPIC_ICR_LOW / 4] & ICR_PENDING))
			return true;
		pause();
	}
	return false;
}

void host_apic_enable(void)
{
	/* Software enable (SDM 11.4.7.2) so fixed IPIs are accepted; the LVT
	 * entries keep their mask bits, so no local interrupt source starts. */
	if (x2apic)
		wrmsr(X2APIC_SVR_MSR, rdmsr(X2APIC_SVR_MSR) | SVR_ENABLE | SPURIOUS_VECTOR);
	else
		xapic[XAPIC_SVR / 4] |= SVR_ENABLE | SPURIOUS_VECTOR;
}

bool host_apic_send_fixed(u32 apic_id, u8 vector)
{
	return send_ipi(apic_id, ICR_FIXED | vector);
}

void host_apic_eoi(void)
{
	if (x2apic)
		wrmsr(X2APIC_EOI_MSR, 0);
	else
		xapic[XAPIC_EOI / 4] = 0;
}

bool host_apic_start_cpu(u32 apic_id, u64 sipi_page)
{
	u32 vector = (u32)(sipi_page >> 12) & 0xff;

	if (!send_ipi(apic_id, ICR_INIT))
		return false;
	delay_us(INIT_DELAY_US);
	for (int i = 0; i < 2; i++) {
		if (!send_ipi(apic_id, ICR_STARTUP | vector))
			return false;
		delay_us(SIPI_DELAY_US);
	}
	return true;
}
