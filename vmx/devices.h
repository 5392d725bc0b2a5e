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

struct guest_devices {
	struct uart_state uart;
	struct pic_chip pic[2];
	struct pit_channel pit[3];
	u8 port61;
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

/* Port handlers: value holds the written value or receives the read one. */
typedef bool (*port_handler)(struct guest *g, u16 port, bool in, u32 *value);
bool uart_io(struct guest *g, u16 port, bool in, u32 *value);
bool pic_io(struct guest *g, u16 port, bool in, u32 *value);
bool pit_io(struct guest *g, u16 port, bool in, u32 *value);
bool port61_io(struct guest *g, u16 port, bool in, u32 *value);

#endif
