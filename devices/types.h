/*
 * The state of the device models every guest gets (tests/guests/PLATFORM.md),
 * one struct per device and struct guest_devices for a guest's set. The
 * models in devices/ know the guest (guest/) and nothing of VMX: port and
 * MMIO accesses reach them through devices/devices.c.
 */
#ifndef DEVICES_TYPES_H
#define DEVICES_TYPES_H

#include "guest/guest.h"

struct uart_state {
	u8 lcr, ier, mcr, scr, dll, dlm, fcr, rbr;
	bool rx_full;       /* RBR holds a byte (only loopback mode sends one) */
	bool thre_pending;  /* the THR-empty interrupt is latched (16550 data sheet) */
	bool irq_line;      /* IRQ 4 as last driven (OUT2 gates it onto the bus) */
	char line[160];
	u32 line_len;
};

struct rtc_state {
	u8 index;          /* port 0x70, bit 7 the NMI mask */
	u8 ram[128];       /* CMOS RAM; time registers are computed when read */
	s64 offset_s;      /* guest-set time minus the epoch-based time */
	s64 alarm_seen_s;  /* guest clock second up to which updates were checked for the alarm */
};

struct pic_chip {
	u8 irr, isr, imr;
	u8 vector_base;
	u8 init_step;     /* 0: ready; 1..3 waiting for ICW2..ICW4 */
	bool icw4_needed, single, auto_eoi, read_isr;
};

struct pit_channel {
	u8 mode, access, rw_state;  /* rw_state: lobyte/hibyte sequencing */
	u16 reload;
	u16 latch;
	bool latched, armed;
	u64 start_tsc;     /* when counting started */
	u64 period_tsc;    /* reload in TSC ticks */
	u64 next_irq_tsc;  /* for channel 0: the next IRQ0 edge; 0 = none */
};

struct lapic_state {
	bool enabled;          /* IA32_APIC_BASE bit 11 */
	u32 id, tpr, svr, ldr, dfr, esr, icr_low, icr_high;
	u32 lvt[6];            /* timer, thermal, PMC, LINT0, LINT1, error */
	u32 tmict, tdcr;
	u32 irr[8], isr[8], tmr[8];
	u64 timer_start, timer_deadline;  /* guest TSC; deadline 0 = not armed */
	u64 tsc_deadline;                 /* IA32_TSC_DEADLINE */
	bool nmi_pending;                 /* an NMI IPI, not yet delivered */
	bool init_pending;                /* an INIT IPI, not yet taken (lapic_take_init) */
	bool sipi_pending;                /* a SIPI for a CPU waiting for one */
	u8 sipi_vector;                   /* ... its vector: start at vector << 12 */
	u32 odd_writes;                   /* dropped writes of the wrong size (logged once) */
};

/* ACPI PM1a registers (devices/acpi_pm.c) and the S3 sleep state. */
struct acpi_pm_state {
	u16 sts, en, cnt;
	bool sleep_requested;  /* SLP_EN written with the S3 type; vmx/ has not taken it yet */
	bool asleep;           /* in S3: the vCPU does not run until a wake event */
	bool woke;             /* a wake event ended the sleep; the vCPU not resumed yet */
};

#define TESTDEV_MMIO_SIZE 4096

struct guest_devices {
	struct uart_state uart;
	struct pic_chip pic[2];
	struct pit_channel pit[3];
	u8 port61;
	struct rtc_state rtc;
	struct lapic_state lapic[GUEST_MAX_VCPUS];  /* one per vCPU, by its index */
	struct acpi_pm_state pm;
	u16 fw_cfg_key;
	u32 fw_cfg_offset;
	u32 pci_address;       /* last value written to 0xcf8 */
	u32 testdev_latch;     /* port 0xe0 */
	u32 testdev_irq_lines; /* pc-testdev IRQ lines 0-23 as last driven (ports 0x2000+n) */
	u8 *testdev_page;      /* the RAM-like MMIO page at 0xff000000 */
};

#endif
