/*
 * Several CPUs in one guest (lib/smp.c): the count fw_cfg reports, the APs started with
 * INIT-SIPI-SIPI, each on its own stack with its APIC ID; spinlocks, barriers, fixed IPIs
 * to one CPU and to all but self. Under QEMU TCG run with -smp N; under umbra with vcpus=N.
 * `cpus=N` on the command line: expect exactly N CPUs (otherwise any count, 1 included).
 */
#include "libguest.h"
#include "platform.h"
#include "smp.h"

#define VEC_PING 0x40
#define VEC_BCAST 0x41
#define ROUNDS 200

static struct spinlock lock;
static volatile u64 locked_count;
static volatile u32 pings[SMP_MAX_CPUS], bcasts[SMP_MAX_CPUS];
static volatile u32 seen_ok[SMP_MAX_CPUS];

static void on_ping(unsigned int vector)
{
	(void)vector;
	pings[smp_id()]++;
	apic_eoi();
}

static void on_bcast(unsigned int vector)
{
	(void)vector;
	bcasts[smp_id()]++;
	apic_eoi();
}

/* Every CPU adds ROUNDS under the lock, with a barrier between rounds checking the sum. */
static void lock_and_barrier(void *arg)
{
	unsigned int me = smp_id(), n = cpu_count();
	u32 ok = 1;

	(void)arg;
	for (u32 r = 0; r < ROUNDS; r++) {
		spin_lock(&lock);
		locked_count = locked_count + 1;	/* not atomic: the lock makes it so */
		spin_unlock(&lock);
		smp_barrier();
		ok &= locked_count == (u64)(r + 1) * n;
		smp_barrier();
	}
	seen_ok[me] = ok;
}

static void wait_for(volatile u32 *p, u32 want)
{
	u64 end = rdtsc() + tsc_us(1000000);

	while (*p < want && rdtsc() < end)
		pause();
}

int main(void)
{
	unsigned int n, want = 0;
	u64 v;
	bool all;

	pic_init();		/* PIC lines masked, off the exception vectors */
	apic_vectors_init();
	apic_write(APIC_SVR, APIC_SVR_ENABLE | 0xff);
	apic_set_handler(VEC_PING, on_ping);
	apic_set_handler(VEC_BCAST, on_bcast);
	if (cmdline_get_u64("cpus", &v))
		want = (unsigned int)v;
	printf("smp_basic: fw_cfg reports %u CPUs\n", fw_cfg_cpu_count());
	if (want)
		report(fw_cfg_cpu_count() == want, "fw_cfg CPU count is %u", want);
	n = smp_init(0);
	if (want)
		report(n == want, "%u CPUs running", want);
	on_cpus(lock_and_barrier, NULL);
	all = true;
	for (unsigned int i = 0; i < n; i++)
		all &= seen_ok[i] == 1;
	report(all && locked_count == (u64)ROUNDS * n,
	       "spinlock and barrier: %u rounds on %u CPUs, count %llu", ROUNDS, n, locked_count);
	sti();
	for (unsigned int i = 1; i < n; i++) {
		for (u32 k = 0; k < 10; k++)
			ipi_send(i, VEC_PING);
		wait_for(&pings[i], 10);
	}
	all = true;
	for (unsigned int i = 1; i < n; i++)
		all &= pings[i] >= 1 && pings[i] <= 10;
	report(all, "fixed IPIs reach each AP (at most once per IPI)");
	ipi_send_all_but_self(VEC_BCAST);
	for (unsigned int i = 1; i < n; i++)
		wait_for(&bcasts[i], 1);
	all = bcasts[0] == 0;
	for (unsigned int i = 1; i < n; i++)
		all &= bcasts[i] == 1;
	report(all, "all-excluding-self IPI: once on every AP, not on the sender");
	cli();
	report(apic_unhandled == 0, "no unexpected interrupt");
	return report_summary();
}
