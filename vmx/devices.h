/*
 * Device models every guest gets (tests/guests/PLATFORM.md): a COM1 UART
 * subset, the isa-debug-exit port, port 0xe9, an 8259A PIC pair and an
 * 8254 PIT channel 0 on IRQ0. Port I/O exits reach them through the port
 * table in vmx/io.c.
 */
#ifndef VMX_DEVICES_H
#define VMX_DEVICES_H

#include "lib/types.h"

struct guest;

struct uart_state {
	u8 lcr, ier, mcr, scr, dll, dlm;
	char line[160];
	u32 line_len;
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
};

#define TESTDEV_MMIO_SIZE 4096

struct guest_devices {
	struct uart_state uart;
	struct pic_chip pic[2];
	struct pit_channel pit[3];
	u8 port61;
	struct lapic_state lapic;
	u16 fw_cfg_key;
	u32 fw_cfg_offset;
	u32 pci_address;       /* last value written to 0xcf8 */
	u32 testdev_latch;     /* port 0xe0 */
	u8 *testdev_page;      /* the RAM-like MMIO page at 0xff000000 */
};

void devices_init(struct guest *g);
/* Emit any buffered console output (at guest end). */
void uart_flush(struct guest *g);
void console_guest_putc(struct guest *g, char c);

/* Timer: raise IRQ0 if its time has come (now: guest TSC); the guest TSC
 * of the next edge, or 0. */
void pit_update(struct guest *g, u64 now);
u64 pit_next_event(struct guest *g);

/* Interrupt controller. */
void pic_raise_irq(struct guest *g, int irq);
/* The vector to deliver, or -1; pic_ack() marks it in service. */
int pic_pending_vector(struct guest *g);
void pic_ack(struct guest *g, int vector);

/* Local APIC (vmx/dev_lapic.c). Times are guest TSC. */
void lapic_reset(struct guest *g);
void lapic_update(struct guest *g, u64 now);
u64 lapic_next_event(struct guest *g);
int lapic_pending_vector(struct guest *g);
void lapic_ack(struct guest *g, int vector);
bool lapic_accepts_pic(struct guest *g);
u64 lapic_read_tsc_deadline(struct guest *g);
void lapic_write_tsc_deadline(struct guest *g, u64 v);
u8 lapic_get_tpr(struct guest *g);
void lapic_set_tpr(struct guest *g, u8 cr8);
bool lapic_mmio(struct guest *g, u64 offset, void *buf, unsigned len, bool write);

/* Firmware-facing pieces of the PC platform (vmx/dev_platform.c). */
bool testdev_mmio(struct guest *g, u64 offset, void *buf, unsigned len, bool write);
/* Write RSDP/RSDT/FADT into guest RAM below 1 MiB (false: no room). */
bool acpi_tables_write(struct guest *g);
/* All pending timers and interrupt sources, as one: (vmx/dev_platform.c) */
void devices_update(struct guest *g, u64 now);
u64 devices_next_event(struct guest *g);
int devices_pending_vector(struct guest *g);
void devices_ack(struct guest *g, int vector);

/* Guest-physical MMIO (vmx/dev_platform.c): false = nothing there. */
bool mmio_access(struct guest *g, u64 gpa, void *buf, unsigned len, bool write);
bool mmio_claimed(u64 gpa);

/* Port handlers: value holds the written value or receives the read one.
 * Byte-wide devices are called once per byte (size 1). */
typedef bool (*port_handler)(struct guest *g, u16 port, unsigned size, bool in, u32 *value);
bool uart_io(struct guest *g, u16 port, unsigned size, bool in, u32 *value);
bool pic_io(struct guest *g, u16 port, unsigned size, bool in, u32 *value);
bool pit_io(struct guest *g, u16 port, unsigned size, bool in, u32 *value);
bool port61_io(struct guest *g, u16 port, unsigned size, bool in, u32 *value);
bool fw_cfg_io(struct guest *g, u16 port, unsigned size, bool in, u32 *value);
bool pci_config_io(struct guest *g, u16 port, unsigned size, bool in, u32 *value);
bool testdev_io(struct guest *g, u16 port, unsigned size, bool in, u32 *value);
bool pm_timer_io(struct guest *g, u16 port, unsigned size, bool in, u32 *value);
bool ignored_io(struct guest *g, u16 port, unsigned size, bool in, u32 *value);

#endif
