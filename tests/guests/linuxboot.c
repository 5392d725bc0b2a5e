/*
 * The Linux boot path (core/linux.c), seen from inside as a kernel sees it: the loader
 * finds this image's "Linux" note (lib/entry_linux.S), so it enters it as a vmlinux by the
 * x86 64-bit boot protocol (Documentation/arch/x86/boot.rst). Checked here: the entry
 * state (CS 0x10 and DS/SS 0x18 from a loaded GDT, interrupts off, paging on), the zero
 * page (setup header, command line, e820 map of the 32 MiB guest, initrd address and size)
 * and the initrd's bytes (tests/linux/initrd-check.txt); then the devices a stock kernel
 * probes that the other guests do not: the CMOS RTC and the 16550A's FIFO bits, loopback
 * and THRE interrupt on IRQ 4.
 */
#include "libguest.h"

#define EXPECT_CMDLINE "console=ttyS0 linuxboot-check"
#define EXPECT_INITRD "umbra initrd check: this file is the initrd of the linuxboot guest\n"
#define RAM_BYTES (32ull << 20)
#define BOOT_CS 0x10
#define BOOT_DS 0x18

extern u64 boot_rsi, boot_rflags;
extern u16 boot_cs, boot_ds, boot_ss;
extern struct {
	u16 limit;
	u64 base;
} __attribute__((packed)) boot_gdtr;

static const u8 *zp;  /* the zero page */

static u64 get(unsigned off, int bytes)
{
	u64 v = 0;

	memcpy(&v, zp + off, (size_t)bytes);
	return v;
}

static void check_entry_state(void)
{
	const u64 *gdt = (const u64 *)(unsigned long)boot_gdtr.base;

	report(boot_cs == BOOT_CS && boot_ds == BOOT_DS && boot_ss == BOOT_DS,
	       "CS %#x, DS %#x, SS %#x are __BOOT_CS and __BOOT_DS", boot_cs, boot_ds, boot_ss);
	report(boot_gdtr.limit >= BOOT_DS + 7 && (gdt[BOOT_CS / 8] & (1ull << 53)) &&
	       (gdt[BOOT_CS / 8] & (1ull << 47)) && ((gdt[BOOT_CS / 8] >> 40) & 0x1a) == 0x1a,
	       "GDT at %#llx: __BOOT_CS is present 64-bit execute/read code",
	       (unsigned long long)boot_gdtr.base);
	report((gdt[BOOT_DS / 8] & (1ull << 47)) && ((gdt[BOOT_DS / 8] >> 40) & 0x1a) == 0x12 &&
	       (gdt[BOOT_DS / 8] & 0xffff) == 0xffff && (gdt[BOOT_DS / 8] & (1ull << 55)),
	       "__BOOT_DS is present flat 4 GiB read/write data");
	report(!(boot_rflags & (1u << 9)), "interrupts off at entry (RFLAGS %#llx)",
	       (unsigned long long)boot_rflags);
	report((read_cr0() & 0x80000001ul) == 0x80000001ul && (rdmsr(MSR_EFER) & (1u << 10)),
	       "long mode with paging");
	/* VM entry never loads CR0.CD/NW (SDM 27.3.2.1): they are the host's, which must
	 * run with caches on; Linux's MTRR code writes CR0 back without CD and would #GP. */
	report(!(read_cr0() & (3ul << 29)), "CR0.CD and CR0.NW clear (CR0 %#lx)", read_cr0());
	report(boot_rsi && !(boot_rsi & 0xfff) && boot_rsi < 0x100000,
	       "RSI %#llx: a page-aligned zero page below 1 MiB", (unsigned long long)boot_rsi);
}

static void check_zero_page(void)
{
	const char *cmd = (const char *)(unsigned long)(get(0x228, 4) | get(0x0c8, 4) << 32);
	u64 initrd = get(0x218, 4) | get(0x0c0, 4) << 32;
	u64 initrd_size = get(0x21c, 4) | get(0x0c4, 4) << 32;
	unsigned n = zp[0x1e8];
	u64 ram_top = 0, ram = 0;
	bool low_hole = true, bios_hole = true, image_in_ram = false;

	report(get(0x1fe, 2) == 0xaa55 && !memcmp(zp + 0x202, "HdrS", 4) &&
	       get(0x206, 2) >= 0x020c, "setup header: boot flag, HdrS, protocol %#llx",
	       (unsigned long long)get(0x206, 2));
	report(zp[0x210] == 0xff && (zp[0x211] & 1), "type_of_loader 0xff, LOADED_HIGH");
	report(strlen(cmd) == strlen(EXPECT_CMDLINE) && !memcmp(cmd, EXPECT_CMDLINE, strlen(cmd)),
	       "command line \"%s\"", cmd);
	for (unsigned i = 0; i < n && i < 128; i++) {
		u64 addr = get(0x2d0 + i * 20, 8), size = get(0x2d0 + i * 20 + 8, 8);
		u32 type = (u32)get(0x2d0 + i * 20 + 16, 4);

		if (type != 1)
			continue;
		ram += size;
		if (addr + size > ram_top)
			ram_top = addr + size;
		if (addr < 0xa0000 && addr + size > 0x9fc00)
			low_hole = false;
		if (addr < 0x100000 && addr + size > 0xe0000)
			bios_hole = false;
		if (addr <= image_start() && image_end() <= addr + size)
			image_in_ram = true;
	}
	report(n >= 2 && ram_top == RAM_BYTES && ram >= RAM_BYTES - 0x61000,
	       "e820: %u entries, RAM up to %#llx (%llu KiB usable)", n,
	       (unsigned long long)ram_top, (unsigned long long)(ram >> 10));
	report(low_hole && bios_hole && image_in_ram,
	       "e820: EBDA and BIOS area reserved, the kernel in RAM");
	report(initrd_size == strlen(EXPECT_INITRD) && !(initrd & 0xfff) &&
	       initrd >= image_end() && initrd + initrd_size <= RAM_BYTES,
	       "initrd: %llu bytes at %#llx, page-aligned, after the kernel, in RAM",
	       (unsigned long long)initrd_size, (unsigned long long)initrd);
	report(initrd_size == strlen(EXPECT_INITRD) &&
	       !memcmp((const void *)(unsigned long)initrd, EXPECT_INITRD, initrd_size),
	       "initrd bytes are the module's");
}

/* CPUID reports MCA: Linux reads MCG_CAP and MCG_STATUS and panics on a #GP. */
static void check_mca(void)
{
	u64 cap = ~0ull, status = ~0ull;

	if (!(cpuid(1, 0).edx & (1u << 14))) {
		report_skip("CPUID reports no MCA");
		return;
	}
	report(!rdmsr_safe(0x179, &cap) && !rdmsr_safe(0x17a, &status) && !(status & 7),
	       "MCA reported: MCG_CAP %#llx and MCG_STATUS %#llx readable, no check in progress",
	       (unsigned long long)cap, (unsigned long long)status);
}

static u8 cmos(u8 index)
{
	outb(0x70, index);
	return inb(0x71);
}

static void cmos_write(u8 index, u8 v)
{
	outb(0x70, index);
	outb(0x71, v);
}

/* The guest's clock starts at zero: its RTC reads 2024-01-01 within the first hour. */
static void check_rtc(void)
{
	u8 year, minutes;

	report(cmos(0x0d) == 0x80 && !(cmos(0x0a) & 0x80) && cmos(0x0b) == 0x02,
	       "RTC: valid (D %#x), no update in progress, BCD 24-hour", cmos(0x0d));
	report(cmos(0x09) == 0x24 && cmos(0x08) == 0x01 && cmos(0x07) == 0x01 &&
	       cmos(0x32) == 0x20 && cmos(0x04) == 0x00 && cmos(0x06) == 0x02,
	       "RTC: 2024-01-01, a Monday, hour 0 (BCD %02x-%02x-%02x)", cmos(0x09), cmos(0x08),
	       cmos(0x07));
	cmos_write(0x0b, 0x06);  /* binary */
	year = cmos(0x09);
	cmos_write(0x0b, 0x02);
	report(year == 24, "RTC: binary mode reads year 24 (%u)", year);
	cmos_write(0x02, 0x30);
	minutes = cmos(0x02);
	report(minutes == 0x30 || minutes == 0x31, "RTC: minutes set to 30 read back %#x", minutes);
	cmos_write(0x40, 0x5a);
	report(cmos(0x40) == 0x5a, "CMOS RAM keeps a byte");
}

static u8 pic_irr(void)
{
	outb(0x20, 0x0a);  /* OCW3: read IRR */
	return inb(0x20);
}

static void check_uart(void)
{
	u8 mcr = inb(0x3fc), iir_fifo, iir_thre, iir_after, msr_loop, lsr_loop, rbr, irr;

	outb(0x3fa, 0x07);              /* FCR: FIFOs on, both cleared */
	iir_fifo = inb(0x3fa);
	outb(0x3fc, mcr | 0x08);        /* OUT2: IRQ 4 reaches the PIC */
	outb(0x3f9, 0x02);              /* IER: THR empty interrupt */
	iir_thre = inb(0x3fa);
	irr = pic_irr();
	iir_after = inb(0x3fa);
	outb(0x3f9, 0x00);
	outb(0x3fc, 0x1a);              /* loopback, OUT2, RTS */
	msr_loop = inb(0x3fe);
	outb(0x3f8, 'Z');
	lsr_loop = inb(0x3fd);
	rbr = inb(0x3f8);
	outb(0x3fc, mcr);               /* back to the console */
	report((iir_fifo & 0xcf) == 0xc1, "16550A: FIFOs reported in IIR (%#x)", iir_fifo);
	report((iir_thre & 0x0f) == 0x02 && (iir_after & 0x0f) == 0x01,
	       "THRE interrupt raised by enabling it, cleared by reading IIR (%#x, %#x)",
	       iir_thre, iir_after);
	report(irr & 0x10, "IRQ 4 requested at the PIC (IRR %#x)", irr);
	report((msr_loop & 0xf0) == 0x90, "loopback: RTS->CTS, OUT2->DCD (MSR %#x)", msr_loop);
	report((lsr_loop & 1) && rbr == 'Z', "loopback: THR byte received (LSR %#x, RBR %#x)",
	       lsr_loop, rbr);
}

int main(void)
{
	zp = (const u8 *)(unsigned long)boot_rsi;
	check_entry_state();
	if (boot_rsi) {
		check_zero_page();
	}
	check_mca();
	check_rtc();
	check_uart();
	return report_summary();
}
