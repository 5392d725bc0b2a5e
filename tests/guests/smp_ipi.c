/*
 * A guest with several vCPUs (umbra's vcpus=N, QEMU's -smp N), run by its bootstrap processor:
 * fw_cfg's CPU count; the AP started by INIT-SIPI-SIPI through the xAPIC ICR (SDM Vol. 3A
 * 9.4.4.1) into a few bytes of real-mode code at 0x8000 that say so and then spin (or halt, with
 * interrupts off: only an NMI, INIT or SIPI wakes it); NMI IPIs to the AP by physical
 * destination and by the all-but-self shorthand, each answered by its real-mode NMI handler;
 * a SIPI to the running AP ignored; INIT then SIPI starting it again; and on the BSP alone, a
 * storm of self-IPIs, a logical (flat) destination, and a fixed IPI with an illegal vector
 * (not sent, ESR bit 5). Arguments: cpus=N (the count fw_cfg must report), ap_halts (the AP
 * waits in HLT instead of spinning), init_self (last, an INIT to the BSP itself, which umbra
 * ends the guest for). Built 32-bit: paging off, so the low pages are plain physical memory.
 */
#include "libguest.h"
#include "platform.h"

#define FW_CFG_SELECT 0x510
#define FW_CFG_DATA 0x511
#define FW_CFG_NB_CPUS 0x05

#define TRAMPOLINE 0x8000u	/* SIPI vector 8: CS 0x0800, IP 0 */
#define NMI_HANDLER 0x8100u
#define AP_STARTED 0x9000u	/* u16 the AP writes 1 to when it starts */
#define AP_NMIS 0x9002u		/* u16 its NMI handler increments */
#define IVT_NMI 0x8u		/* real-mode interrupt vector table entry 2 */

#define ICR_FIXED 0x000u
#define ICR_NMI 0x400u
#define ICR_INIT 0x500u
#define ICR_STARTUP 0x600u
#define ICR_LOGICAL BIT(11)
#define ICR_ASSERT BIT(14)
#define ICR_ALL_BUT_SELF (3u << 18)
#define APIC_LDR 0xd0
#define APIC_DFR 0xe0
#define ESR_SEND_ILLEGAL BIT(5)
#define WAIT_US 200000		/* for what takes one slice of another vCPU at most */
#define STORM 3000

/* Physical memory below 1 MiB (paging is off). */
static volatile u16 *low16(u32 addr)
{
	return (volatile u16 *)(unsigned long)addr;
}

static void put_bytes(u32 addr, const u8 *bytes, unsigned int n)
{
	for (unsigned int i = 0; i < n; i++)
		((volatile u8 *)(unsigned long)addr)[i] = bytes[i];
}

static u64 fw_cfg_read(u16 key, unsigned int len)
{
	u64 v = 0;

	outw(FW_CFG_SELECT, key);
	for (unsigned int i = 0; i < len; i++)
		v |= (u64)inb(FW_CFG_DATA) << (8 * i);
	return v;
}

static void send_ipi(u32 dest, u32 icr_low)
{
	apic_write(APIC_ICR_HIGH, dest << 24);
	apic_write(APIC_ICR_LOW, icr_low);
}

/* Waits until *p reads want; false after WAIT_US. */
static bool wait_for(volatile u16 *p, u16 want)
{
	u64 end = rdtsc() + tsc_us(WAIT_US);

	while (*p != want && rdtsc() < end)
		pause();
	return *p == want;
}

/* The AP's code, 16-bit: DS = 0, say it started, then spin (or halt with IF = 0). */
static void write_ap_code(bool halts)
{
	const u8 code[] = {
		0x31, 0xc0,				/* xor ax, ax */
		0x8e, 0xd8,				/* mov ds, ax */
		0xc7, 0x06, 0x00, 0x90, 0x01, 0x00,	/* mov word [0x9000], 1 */
		halts ? 0xf4 : 0xf3, halts ? 0xeb : 0x90,	/* hlt; jmp  /  pause */
		halts ? 0xfd : 0xeb, halts ? 0x90 : 0xfc,	/* (back to hlt) / jmp back */
	};
	const u8 nmi[] = {
		0xff, 0x06, 0x02, 0x90,			/* inc word [0x9002] */
		0xcf,					/* iret */
	};
	const u8 ivt_nmi[] = { NMI_HANDLER & 0xff, NMI_HANDLER >> 8, 0, 0 };  /* 0000:8100 */

	put_bytes(TRAMPOLINE, code, sizeof(code));
	put_bytes(NMI_HANDLER, nmi, sizeof(nmi));
	put_bytes(IVT_NMI, ivt_nmi, sizeof(ivt_nmi));
}

static void start_ap(void)
{
	send_ipi(1, ICR_INIT | ICR_ASSERT);
	send_ipi(1, ICR_STARTUP | ICR_ASSERT | (TRAMPOLINE >> 12));
	send_ipi(1, ICR_STARTUP | ICR_ASSERT | (TRAMPOLINE >> 12));  /* ignored: it runs */
}

static void check_ap(bool halts)
{
	u16 nmis;
	bool all = true;

	write_ap_code(halts);
	*low16(AP_STARTED) = 0;
	*low16(AP_NMIS) = 0;
	start_ap();
	report(wait_for(low16(AP_STARTED), 1), "AP (APIC ID 1) started by INIT-SIPI-SIPI at 0x8000");

	for (unsigned int i = 1; i <= 20 && all; i++) {
		send_ipi(1, ICR_NMI | ICR_ASSERT);
		all = wait_for(low16(AP_NMIS), (u16)i);
	}
	nmis = *low16(AP_NMIS);
	report(all, "20 NMI IPIs to the AP (physical destination 1), each handled (%u)", nmis);
	send_ipi(0, ICR_NMI | ICR_ASSERT | ICR_ALL_BUT_SELF);
	report(wait_for(low16(AP_NMIS), (u16)(nmis + 1)), "an NMI to all but self reaches the AP");

	/* The AP runs: a SIPI without an INIT before it is ignored (SDM 9.4.4.1). */
	*low16(AP_STARTED) = 0x55;
	send_ipi(1, ICR_STARTUP | ICR_ASSERT | (TRAMPOLINE >> 12));
	report(!wait_for(low16(AP_STARTED), 1), "a SIPI to the running AP is ignored");
	/* INIT puts it back to waiting for a SIPI, which starts it again. */
	send_ipi(1, ICR_INIT | ICR_ASSERT);
	send_ipi(1, ICR_STARTUP | ICR_ASSERT | (TRAMPOLINE >> 12));
	report(wait_for(low16(AP_STARTED), 1), "INIT then SIPI start the AP again");
}

static volatile unsigned int self_ipis, logical_ipis, stray;

static void count_self(unsigned int vector)
{
	(void)vector;
	self_ipis++;
	apic_eoi();
}

static void count_logical(unsigned int vector)
{
	(void)vector;
	logical_ipis++;
	apic_eoi();
}

static void count_stray(unsigned int vector)
{
	(void)vector;
	stray++;
	apic_eoi();
}

static void check_bsp_alone(void)
{
	u64 end;

	apic_vectors_init();
	apic_set_handler(0x40, count_self);
	apic_set_handler(0x41, count_logical);
	for (unsigned int v = 0x42; v < 0x50; v++)
		apic_set_handler(v, count_stray);
	apic_write(APIC_SVR, APIC_SVR_ENABLE | 0xff);

	sti();
	for (unsigned int i = 0; i < STORM; i++)
		send_ipi(0, APIC_ICR_DEST_SELF | 0x40);
	end = rdtsc() + tsc_us(WAIT_US);
	while (self_ipis < STORM && rdtsc() < end)
		pause();
	cli();
	report(self_ipis == STORM, "a storm of %u self-IPIs, each delivered (%u)", STORM, self_ipis);

	/* Flat logical destination (SDM 11.6.2.2): our LDR bit 0, message mask 0x01. */
	apic_write(APIC_DFR, 0xffffffff);
	apic_write(APIC_LDR, 1u << 24);
	sti();
	send_ipi(0x01, ICR_FIXED | ICR_ASSERT | ICR_LOGICAL | 0x41);
	send_ipi(0x02, ICR_FIXED | ICR_ASSERT | ICR_LOGICAL | 0x42);  /* no one's bit */
	for (unsigned int i = 0; i < 1000 && !logical_ipis; i++)
		pause();
	cli();
	report(logical_ipis == 1 && stray == 0, "logical destination: mask 0x01 reaches us, 0x02 "
	       "no one (%u, %u)", logical_ipis, stray);

	/* A fixed vector below 16 is not sent: ESR "send illegal vector" (SDM 11.5.3). */
	apic_write(APIC_ESR, 0);
	sti();
	send_ipi(0, APIC_ICR_DEST_SELF | 0x03);
	for (unsigned int i = 0; i < 1000; i++)
		pause();
	cli();
	report(apic_read(APIC_ESR) & ESR_SEND_ILLEGAL, "fixed IPI with vector 3: ESR send illegal "
	       "vector (%#x)", apic_read(APIC_ESR));
	report(stray == 0 && apic_unhandled == 0, "no interrupt at an unexpected vector (%u, %u)",
	       stray, apic_unhandled);
}

int main(void)
{
	u64 want = 1, cpus = fw_cfg_read(FW_CFG_NB_CPUS, 2);

	cmdline_get_u64("cpus", &want);
	report(cpus == want, "fw_cfg CPU count %llu (expected %llu)", cpus, want);
	check_bsp_alone();
	if (cpus >= 2)
		check_ap(cmdline_has("ap_halts"));
	else
		report_skip("one CPU: no AP to start");
	if (cmdline_has("init_self")) {
		printf("INIT to ourselves: umbra ends the guest\n");
		send_ipi(0, ICR_INIT | ICR_ASSERT | APIC_ICR_DEST_SELF);
		for (;;)
			pause();
	}
	return report_summary();
}
