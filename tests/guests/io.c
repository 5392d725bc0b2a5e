/*
 * Port I/O as the platform contract describes it (tests/guests/PLATFORM.md, "Devices"): the
 * COM1 register subset, all-ones from unassigned ports at every width, and string I/O (REP
 * INS/OUTS) in both directions, including DF=1 and a zero count. Built 32-bit (io) and 64-bit
 * (io64), since string instructions use ESI/EDI/ECX in one and RSI/RDI/RCX in the other.
 */
#include "libguest.h"

#define COM1 0x3f8
#define COM1_LCR (COM1 + 3)
#define COM1_LSR (COM1 + 5)
#define LSR_IDLE 0x60		/* THR empty and transmitter empty, no data ready */
#define DEBUGCON 0xe9
/* Free both in umbra (everything not emulated) and in QEMU's PC machine. */
static const u16 unassigned_ports[] = { 0x210, 0x300, 0x330 };
#define SPARE_PORT 0x210

static void check_com1(void)
{
	report(inb(COM1_LSR) == LSR_IDLE, "COM1 LSR reads %#x (expected 0x60)", inb(COM1_LSR));
	report(inb(COM1) == 0, "COM1 RBR reads 0 (no input)");

	/* DLAB on, divisor 3 (38400), DLAB off, 8N1, IER 0, FIFOs, MCR: all accepted writes. */
	outb(COM1_LCR, 0x80);
	outb(COM1, 3);
	outb(COM1 + 1, 0);
	outb(COM1_LCR, 0x03);
	outb(COM1 + 1, 0);
	outb(COM1 + 2, 0x07);
	outb(COM1 + 4, 0x03);
	report(inb(COM1_LSR) == LSR_IDLE, "COM1 LSR still %#x after DLAB/IER/FCR/LCR/MCR writes",
	       inb(COM1_LSR));
	printf("io: this line is printed after the COM1 configuration writes\n");
}

static void check_unassigned(void)
{
	for (unsigned int i = 0; i < ARRAY_SIZE(unassigned_ports); i++) {
		u16 port = unassigned_ports[i];

		outb(port, 0);
		outw(port, 0);
		outl(port, 0);
		report(inb(port) == 0xff && inw(port) == 0xffff && inl(port) == 0xffffffff,
		       "port %#x reads all-ones at 8/16/32 bits after writes of 0", port);
	}
}

/* True if the `len` bytes at p are all `v`. */
static bool all_bytes(const u8 *p, size_t len, u8 v)
{
	for (size_t i = 0; i < len; i++)
		if (p[i] != v)
			return false;
	return true;
}

static void check_string_out(void)
{
	static const char com1_msg[] = "io: this line was written with rep outsb to COM1\n";
	static const char e9_msg[] = "io: this line was written with rep outsb to port 0xe9\n";
	const char *si = com1_msg;
	unsigned long cx = sizeof(com1_msg) - 1;

	asm volatile("rep outsb" : "+S"(si), "+c"(cx) : "d"(COM1) : "memory");
	report(cx == 0 && si == com1_msg + sizeof(com1_msg) - 1,
	       "rep outsb to COM1 advances SI by the count and ends with CX = 0");

	si = e9_msg;
	cx = sizeof(e9_msg) - 1;
	asm volatile("rep outsb" : "+S"(si), "+c"(cx) : "d"(DEBUGCON) : "memory");
	report(cx == 0 && si == e9_msg + sizeof(e9_msg) - 1,
	       "rep outsb to port 0xe9 advances SI by the count (the line shows under umbra)");
}

/* REP INS{B,W,L} of `count` units into buf: the asm needs the unit size in its mnemonic. */
#define REP_INS(insn, port, buf, count, di_out, cx_out)                        \
	do {                                                                   \
		void *di_ = (buf);                                             \
		unsigned long cx_ = (count);                                   \
		asm volatile("rep " insn : "+D"(di_), "+c"(cx_) : "d"(port) : "memory"); \
		*(di_out) = di_;                                               \
		*(cx_out) = cx_;                                               \
	} while (0)

static void check_string_in(void)
{
	u8 buf[32 + 1];
	void *di;
	unsigned long cx;

	memset(buf, 0, sizeof(buf));
	REP_INS("insb", SPARE_PORT, buf, 32, &di, &cx);
	report(all_bytes(buf, 32, 0xff) && buf[32] == 0 && di == buf + 32 && cx == 0,
	       "rep insb x32 from an unassigned port: 0xff bytes, DI += 32");

	memset(buf, 0, sizeof(buf));
	REP_INS("insw", SPARE_PORT, buf, 16, &di, &cx);
	report(all_bytes(buf, 32, 0xff) && buf[32] == 0 && di == buf + 32 && cx == 0,
	       "rep insw x16 from an unassigned port: 0xffff words, DI += 32");

	memset(buf, 0, sizeof(buf));
	REP_INS("insl", SPARE_PORT, buf, 8, &di, &cx);
	report(all_bytes(buf, 32, 0xff) && buf[32] == 0 && di == buf + 32 && cx == 0,
	       "rep insl x8 from an unassigned port: 0xffffffff dwords, DI += 32");

	memset(buf, 0, sizeof(buf));
	REP_INS("insb", SPARE_PORT, buf, 0, &di, &cx);
	report(all_bytes(buf, sizeof(buf), 0) && di == buf && cx == 0,
	       "rep insb with a count of 0 writes nothing");

	/* DF=1: the string goes downwards from DI (SDM Vol. 2A INS). */
	memset(buf, 0, sizeof(buf));
	di = buf + 31;
	cx = 16;
	asm volatile("std; rep insb; cld" : "+D"(di), "+c"(cx) : "d"(SPARE_PORT) : "memory");
	report(all_bytes(buf, 16, 0) && all_bytes(buf + 16, 16, 0xff) && buf[32] == 0 &&
	       di == buf + 15 && cx == 0,
	       "rep insb with DF=1 fills downwards and decrements DI");
	report(!(read_flags() & RFLAGS_DF), "DF is clear again");
}

int main(void)
{
	check_com1();
	check_unassigned();
	check_string_out();
	check_string_in();
	return report_summary();
}
