/*
 * Timers at their fastest, and guests that never stop. Each word of the command line is one
 * case, run in order:
 *   apic_masked  APIC periodic timer, count 1, divide 1, masked: the guest runs on (a loop
 *                of work finishes) and no interrupt is requested;
 *   apic_cli     the same timer unmasked with IF=0: the loop finishes, the vector waits in
 *                IRR, and STI brings one interrupt, not one per period (ticks coalesce);
 *   pit_cli      PIT channel 0 at its shortest period (reload 1) with IF=0: the same;
 *   apic         hostile: the unmasked timer with a handler that EOIs, and STI: interrupts
 *                arrive as fast as they can be delivered, forever. The hypervisor must end
 *                this guest at its time limit, naming the interrupt storm;
 *   spin         hostile: CLI and a loop without exits, forever: ended at its time limit.
 * (SDM Vol. 3A 11.5.4: the timer sets the vector's IRR bit; a set bit takes no more.)
 */
#include "libguest.h"
#include "platform.h"

#define TIMER_VECTOR 0x50
#define WORK 2000000u

static volatile unsigned int apic_ticks, pit_ticks;

static void apic_tick(unsigned int vector)
{
	(void)vector;
	if (++apic_ticks == 1 && !cmdline_has("apic"))
		apic_write(APIC_TIMER_INITIAL, 0);  /* one is enough to count */
	apic_eoi();
}

static void pit_tick(unsigned int irq)
{
	(void)irq;
	pit_ticks++;
	pic_mask(0);
}

/* A loop of plain work: it only ends if the guest gets the CPU. */
static bool work(void)
{
	volatile unsigned int sink = 0;

	for (unsigned int i = 0; i < WORK; i++)
		sink += i;
	return sink == (u32)((u64)WORK * (WORK - 1) / 2);
}

static void apic_fastest(bool masked)
{
	apic_write(APIC_TIMER_DIVIDE, APIC_TIMER_DIVIDE_1);
	apic_write(APIC_LVT_TIMER, TIMER_VECTOR | APIC_TIMER_PERIODIC |
		   (masked ? APIC_LVT_MASKED : 0));
	apic_write(APIC_TIMER_INITIAL, 1);
}

static void check_apic(bool masked)
{
	cli();
	apic_ticks = 0;
	apic_fastest(masked);
	report(work(), "APIC periodic timer at count 1, divide 1, %s, IF=0: the guest runs on",
	       masked ? "masked" : "unmasked");
	report(apic_vector_bit(APIC_IRR, TIMER_VECTOR) == !masked,
	       "... the timer vector is %srequested in IRR", masked ? "not " : "");
	sti();
	for (int i = 0; i < 1000 && apic_ticks == 0 && !masked; i++)
		pause();
	cli();
	apic_write(APIC_TIMER_INITIAL, 0);
	/* One for all the periods with IF=0; a tick that came while the handler ran, before
	 * it stopped the timer, may add a second. */
	report(masked ? apic_ticks == 0 : apic_ticks >= 1 && apic_ticks <= 2,
	       "... and STI delivers %s (%u)",
	       masked ? "nothing" : "one interrupt for all the periods that passed", apic_ticks);
}

static void check_pit(void)
{
	cli();
	pit_ticks = 0;
	irq_set_handler(0, pit_tick);
	pic_unmask(0);
	pit_periodic(PIT_HZ);  /* reload 1: the shortest period */
	report(work(), "PIT at its shortest period, IF=0: the guest runs on");
	sti();
	for (int i = 0; i < 1000 && pit_ticks == 0; i++)
		pause();
	cli();
	report(pit_ticks == 1, "... and STI delivers one IRQ0 for all the periods (%u)", pit_ticks);
}

static void storm(void)
{
	printf("STORM: an APIC timer with count 1 and a handler that EOIs, IF=1, forever\n");
	apic_fastest(false);
	sti();
	for (;;)
		pause();
}

static void spin(void)
{
	printf("STORM: CLI and a loop without exits, forever\n");
	cli();
	for (;;)
		asm volatile("");
}

int main(void)
{
	pic_init();
	apic_vectors_init();
	apic_set_handler(TIMER_VECTOR, apic_tick);
	apic_write(APIC_SVR, APIC_SVR_ENABLE | 0xff);
	if (cmdline_has("apic_masked"))
		check_apic(true);
	if (cmdline_has("apic_cli"))
		check_apic(false);
	if (cmdline_has("pit_cli"))
		check_pit();
	if (cmdline_has("apic"))
		storm();
	if (cmdline_has("spin"))
		spin();
	return report_summary();
}
