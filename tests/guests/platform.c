/*
 * The PC platform around the CPU that QEMU-style test kernels (kvm-unit-tests' x86 platform,
 * see tests/guests/README.md) expect: what the loader passes (mem_upper against fw_cfg's RAM
 * size, the command line, where the multiboot info lies), fw_cfg, COM1's divisor latch, PCI
 * configuration ports, unassigned ports, the ACPI RSDP/RSDT/FADT and the PM timer they
 * announce; and CPU details: CPUID bits umbra hides, VMCALL, INVD/WBINVD, debug registers and
 * MSRs that must be readable. Built 32-bit (platform) and 64-bit (platform64).
 */
#include "libguest.h"
#include "platform.h"

#define FW_CFG_SELECT 0x510
#define FW_CFG_DATA 0x511
#define FW_CFG_SIGNATURE 0x00
#define FW_CFG_ID 0x01
#define FW_CFG_RAM_SIZE 0x03
#define FW_CFG_NB_CPUS 0x05
#define FW_CFG_MAX_RAM 0x11		/* kvm-unit-tests' name; QEMU's FW_CFG_KERNEL_DATA */

#define COM1 0x3f8
#define COM1_LCR (COM1 + 3)
#define COM1_LSR (COM1 + 5)
#define LSR_THR_EMPTY BIT(5)
#define LCR_DLAB 0x80

#define PCI_ADDRESS 0xcf8
#define PCI_DATA 0xcfc
#define PCI_ENABLE 0x80000000u

#define PM_TIMER_HZ 3579545u

/* ---- loader and fw_cfg ------------------------------------------------------------------- */

static u64 fw_cfg_read(u16 key, unsigned int len)
{
	u64 v = 0;

	outw(FW_CFG_SELECT, key);
	for (unsigned int i = 0; i < len; i++)
		v |= (u64)inb(FW_CFG_DATA) << (8 * i);
	return v;
}

static void check_fw_cfg(void)
{
	u64 sig = fw_cfg_read(FW_CFG_SIGNATURE, 5), cpus = fw_cfg_read(FW_CFG_NB_CPUS, 2);
	u64 ram = fw_cfg_read(FW_CFG_RAM_SIZE, 8), max_ram = fw_cfg_read(FW_CFG_MAX_RAM, 8);

	report(sig == 0x554d4551ull, "fw_cfg key 0: signature \"QEMU\", then 0 (%#llx)", sig);
	report(fw_cfg_read(FW_CFG_ID, 4) & 1, "fw_cfg key 1: traditional interface bit set");
	report(cpus >= 1, "fw_cfg key 5: %llu CPU(s)", cpus);
	report_umbra(cpus == 1, "fw_cfg key 5: exactly one CPU");
	report(ram >= 2 * MIB && !(ram & 0xfff), "fw_cfg key 3: RAM size %llu KiB",
	       udiv64(ram, 1024, NULL));
	printf("fw_cfg key 0x11 reads %#llx\n", max_ram);
	report_umbra(max_ram == ram, "fw_cfg key 0x11 (max RAM) = RAM size");
	report(fw_cfg_read(0x3fff, 8) == 0 && fw_cfg_read(0x7f00, 4) == 0,
	       "fw_cfg: unknown keys 0x3fff and 0x7f00 read 0");

	const struct multiboot_info *mb = mb_info();
	unsigned long mb_addr = (unsigned long)mb;

	report(mb && (mb->flags & MB_INFO_MEM) && ram_end() <= ram && ram - ram_end() < MIB,
	       "multiboot mem_upper %u KiB: RAM ends within 1 MiB below fw_cfg's %llu KiB",
	       mb ? mb->mem_upper : 0, udiv64(ram, 1024, NULL));
	report_umbra(ram_end() == ram, "multiboot mem_upper = fw_cfg RAM size - 1 MiB, exactly");
	report_umbra(mb_addr >= PAGE_SIZE && mb_addr < MIB,
		     "multiboot info at %#lx: below 1 MiB, not in page 0", mb_addr);
}

static void check_cmdline(void)
{
	const char *c = cmdline();
	size_t name_len = 0;
	bool name_ok;

	while (c[name_len] && c[name_len] != ' ')
		name_len++;
	name_ok = name_len > 0;
	for (size_t i = 0; i < name_len; i++)
		name_ok = name_ok && c[i] != '=';
	report(name_ok && (c[name_len] == 0 || (c[name_len] == ' ' && c[name_len + 1] != ' ')),
	       "command line \"%s\": a name, then the arguments after one space", c);
	report(!cmdline_has("platform_bad_arg"), "command line has no word the test never passes");
}

/* ---- ports ------------------------------------------------------------------------------- */

static void check_com1(void)
{
	u8 lcr = inb(COM1_LCR);

	report(inb(COM1_LSR) & LSR_THR_EMPTY, "COM1 LSR bit 5 (THR empty) reads 1");
	/* Divisor 1 (115200 baud) through the DLAB, as every PC kernel does. */
	outb(COM1_LCR, lcr | LCR_DLAB);
	outb(COM1, 1);
	outb(COM1 + 1, 0);
	outb(COM1_LCR, lcr & ~LCR_DLAB);
	report(inb(COM1_LSR) & LSR_THR_EMPTY, "COM1: divisor latch writes accepted, THR still empty");
	printf("platform: this line is printed after the COM1 divisor writes\n");
}

static void check_unassigned_ports(void)
{
	static const u16 ports[] = { 0x110, 0x2a0, 0x5e0 };

	for (unsigned int i = 0; i < ARRAY_SIZE(ports); i++) {
		outl(ports[i], 0);
		report(inb(ports[i]) == 0xff && inw(ports[i]) == 0xffff &&
		       inl(ports[i]) == 0xffffffff, "port %#x reads all-ones at 8/16/32 bits",
		       ports[i]);
	}
}

static u32 pci_read(u32 bus, u32 dev, u32 fn, u32 reg)
{
	outl(PCI_ADDRESS, PCI_ENABLE | bus << 16 | dev << 11 | fn << 8 | reg);
	return inl(PCI_DATA);
}

static void check_pci(void)
{
	u32 host_bridge = pci_read(0, 0, 0, 0);
	unsigned int present = 0;

	outl(PCI_ADDRESS, PCI_ENABLE | 31 << 11 | 0xf0);
	report(inl(PCI_ADDRESS) == (PCI_ENABLE | 31 << 11 | 0xf0),
	       "PCI: the 0xcf8 address register reads back");
	report(pci_read(0, 31, 0, 0) == 0xffffffff && pci_read(0, 31, 7, 0) == 0xffffffff &&
	       pci_read(1, 0, 0, 0) == 0xffffffff && pci_read(255, 31, 7, 0) == 0xffffffff,
	       "PCI: no device at 0:31.0, 0:31.7, 1:0.0, 255:31.7 (all-ones)");
	outl(PCI_ADDRESS, PCI_ENABLE | 31 << 11);
	report(inw(PCI_DATA) == 0xffff && inw(PCI_DATA + 2) == 0xffff,
	       "PCI: 16-bit reads of vendor and device ID at 0:31.0 give 0xffff");
	for (u32 dev = 0; dev < 32; dev++)
		present += (pci_read(0, dev, 0, 0) & 0xffff) != 0xffff;
	printf("PCI 0:0.0 reads %#x; %u device(s) on bus 0\n", host_bridge, present);
	report_umbra(present == 0, "PCI: vendor 0xffff (no device) everywhere on bus 0");
	outl(PCI_ADDRESS, 0);
}

/* ---- ACPI -------------------------------------------------------------------------------- */

struct acpi_header {
	char signature[4];
	u32 length;
	u8 revision, checksum;
	char oem_id[6], oem_table_id[8];
	u32 oem_revision, creator_id, creator_revision;
} PACKED;

#define FADT_PM_TMR_BLK 76
#define FADT_PM_TMR_LEN 91
#define FADT_FLAGS 112
#define FADT_TMR_VAL_EXT BIT(8)	/* 32-bit PM timer */

static u8 checksum(const void *p, u32 len)
{
	u8 sum = 0;

	for (u32 i = 0; i < len; i++)
		sum += ((const u8 *)p)[i];
	return sum;
}

/* ACPI 6.5 5.2.5.1: on a 16-byte boundary in the BIOS area 0xe0000-0xfffff. */
static const u8 *find_rsdp(void)
{
	for (unsigned long p = 0xe0000; p < 0x100000; p += 16)
		if (!memcmp((const void *)p, "RSD PTR ", 8) && checksum((const void *)p, 20) == 0)
			return (const u8 *)p;
	return NULL;
}

static const struct acpi_header *find_fadt(void)
{
	const u8 *rsdp = find_rsdp();
	const struct acpi_header *rsdt, *t;
	u32 rsdt_addr, entry;

	report(rsdp, "ACPI: RSDP with a valid checksum at %p", rsdp);
	if (!rsdp)
		return NULL;
	memcpy(&rsdt_addr, rsdp + 16, 4);
	rsdt = (const struct acpi_header *)(unsigned long)rsdt_addr;
	report(!memcmp(rsdt->signature, "RSDT", 4) && rsdt->length >= sizeof(*rsdt) &&
	       checksum(rsdt, rsdt->length) == 0, "ACPI: RSDT at %#x with a valid checksum",
	       rsdt_addr);
	for (u32 off = sizeof(*rsdt); off + 4 <= rsdt->length; off += 4) {
		memcpy(&entry, (const u8 *)rsdt + off, 4);
		t = (const struct acpi_header *)(unsigned long)entry;
		if (!memcmp(t->signature, "FACP", 4)) {
			report(t->length >= FADT_PM_TMR_LEN + 1 && checksum(t, t->length) == 0,
			       "ACPI: FADT at %#x, %u bytes, valid checksum", entry, t->length);
			return t;
		}
	}
	report(false, "ACPI: the RSDT lists a FADT (FACP)");
	return NULL;
}

#define FADT_FIRMWARE_CTRL 36
#define FADT_PM1A_EVT_BLK 56
#define FADT_PM1A_CNT_BLK 64
#define PM1_STS_RTC BIT(10)
#define PM1_CNT_SCI_EN BIT(0)
#define RTC_REG_A_UIP 0x80
#define RTC_REG_B_AIE 0x20
#define RTC_REG_C_IRQF 0x80
#define RTC_REG_C_AF 0x20

static const struct acpi_header *sdt_find(const struct acpi_header *sdt, unsigned width,
					  const char *sig)
{
	for (u32 off = sizeof(*sdt); off + width <= sdt->length; off += width) {
		u64 entry = 0;
		const struct acpi_header *t;

		memcpy(&entry, (const u8 *)sdt + off, width);
		t = (const struct acpi_header *)(unsigned long)entry;
		if (!memcmp(t->signature, sig, 4))
			return t;
	}
	return NULL;
}

/* The ACPI 2.0 part: XSDT, FACS, MADT (one enabled local APIC, ID 0, an 8259 pair). */
static void check_acpi_tables(const struct acpi_header *fadt)
{
	const u8 *rsdp = find_rsdp(), *facs, *madt;
	const struct acpi_header *rsdt, *xsdt;
	u32 rsdt_addr, facs_addr, facs_len, lapic_base, madt_flags;
	u64 xsdt_addr;

	memcpy(&rsdt_addr, rsdp + 16, 4);
	memcpy(&xsdt_addr, rsdp + 24, 8);
	rsdt = (const struct acpi_header *)(unsigned long)rsdt_addr;
	report(rsdp[15] >= 2 && checksum(rsdp, 36) == 0, "ACPI: RSDP revision %u, extended checksum",
	       rsdp[15]);
	xsdt = (const struct acpi_header *)(unsigned long)xsdt_addr;
	report(xsdt_addr && !memcmp(xsdt->signature, "XSDT", 4) && checksum(xsdt, xsdt->length) == 0 &&
	       sdt_find(xsdt, 8, "FACP") == fadt && sdt_find(xsdt, 8, "APIC") == sdt_find(rsdt, 4, "APIC"),
	       "ACPI: XSDT at %#llx lists the RSDT's FADT and MADT", (unsigned long long)xsdt_addr);

	memcpy(&facs_addr, (const u8 *)fadt + FADT_FIRMWARE_CTRL, 4);
	facs = (const u8 *)(unsigned long)facs_addr;
	memcpy(&facs_len, facs + 4, 4);
	report(facs_addr && !(facs_addr & 63) && !memcmp(facs, "FACS", 4) && facs_len >= 64,
	       "ACPI: FACS at %#x, 64-byte aligned, %u bytes", facs_addr, facs_len);

	madt = (const u8 *)sdt_find(rsdt, 4, "APIC");
	report(madt && checksum(madt, ((const struct acpi_header *)madt)->length) == 0,
	       "ACPI: MADT with a valid checksum");
	if (!madt)
		return;
	memcpy(&lapic_base, madt + 36, 4);
	memcpy(&madt_flags, madt + 40, 4);
	report(lapic_base == 0xfee00000 && (madt_flags & 1), "MADT: local APIC at %#x, PCAT_COMPAT",
	       lapic_base);
	{
		u32 len = ((const struct acpi_header *)madt)->length, lapics = 0, others = 0;
		bool id0 = false;

		for (u32 off = 44; off + 2 <= len && madt[off + 1] >= 2; off += madt[off + 1]) {
			if (madt[off] == 0) {
				lapics++;
				id0 |= madt[off + 3] == 0 && (madt[off + 4] & 1);
			} else {
				others++;
			}
		}
		report(lapics == 1 && id0 && !others,
		       "MADT: one enabled local APIC (ID 0), no I/O APIC (%u local, %u other)",
		       lapics, others);
	}
}

static u8 rtc_in(u8 reg)
{
	outb(0x70, reg);
	return inb(0x71);
}

static void rtc_out(u8 reg, u8 v)
{
	outb(0x70, reg);
	outb(0x71, v);
}

/* PM1 registers and the RTC alarm that is the S3 wake event (the sleep itself:
 * the stock kvm-unit-tests s3). */
static void check_pm1_and_rtc_alarm(const struct acpi_header *fadt)
{
	u32 evt, cnt;
	u64 spins = 0;
	u8 c;

	memcpy(&evt, (const u8 *)fadt + FADT_PM1A_EVT_BLK, 4);
	memcpy(&cnt, (const u8 *)fadt + FADT_PM1A_CNT_BLK, 4);
	report(evt && cnt && (inw((u16)cnt) & PM1_CNT_SCI_EN),
	       "PM1: event block %#x, control %#x, SCI_EN reads 1 (always in ACPI mode)", evt, cnt);

	/* UIP goes 1 then 0 once a second. */
	while (!(rtc_in(0x0a) & RTC_REG_A_UIP) && ++spins < 100000000)
		;
	report(spins < 100000000, "RTC: register A's UIP rises before an update");
	while (rtc_in(0x0a) & RTC_REG_A_UIP)
		;
	rtc_in(0x0c);
	outw((u16)evt, PM1_STS_RTC);                 /* write 1 to clear */
	report(!(inw((u16)evt) & PM1_STS_RTC), "PM1_STS: RTC_STS clear after writing 1");
	rtc_out(0x01, 0xc0), rtc_out(0x03, 0xc0), rtc_out(0x05, 0xc0);  /* every second */
	spins = 0;
	while (!((c = rtc_in(0x0c)) & RTC_REG_C_AF) && ++spins < 100000000)
		;
	report((c & RTC_REG_C_AF) && !(c & RTC_REG_C_IRQF) && !(inw((u16)evt) & PM1_STS_RTC),
	       "RTC: alarm sets AF at the next update; AIE off: no IRQF, no RTC_STS (C %#x)", c);
	report(rtc_in(0x0c) == 0, "RTC: reading register C clears it");
	rtc_out(0x0b, rtc_in(0x0b) | RTC_REG_B_AIE);
	while (!((c = rtc_in(0x0c)) & RTC_REG_C_AF))
		;
	report((c & RTC_REG_C_IRQF) && (inw((u16)evt) & PM1_STS_RTC),
	       "RTC: with AIE the alarm sets IRQF and PM1_STS.RTC_STS (C %#x)", c);
	rtc_out(0x0b, rtc_in(0x0b) & ~RTC_REG_B_AIE);
	outw((u16)evt, PM1_STS_RTC);
}

static void check_pm_timer(const struct acpi_header *fadt)
{
	const u8 *f = (const u8 *)fadt;
	u32 port, flags = 0, mask, prev, now, steps_back = 0, total = 0, start;
	u64 t_end, ticks, best;
	bool rate_ok = false;

	memcpy(&port, f + FADT_PM_TMR_BLK, 4);
	if (fadt->length >= FADT_FLAGS + 4)
		memcpy(&flags, f + FADT_FLAGS, 4);
	mask = flags & FADT_TMR_VAL_EXT ? 0xffffffff : 0xffffff;
	report(port && port < 0x10000 && f[FADT_PM_TMR_LEN] == 4,
	       "ACPI: PM timer at port %#x, 4 bytes, %s", port, mask == 0xffffff ? "24-bit" : "32-bit");
	if (!port || port >= 0x10000)
		return;

	/* Consecutive reads never go back (modulo the wrap) and the count moves. */
	prev = inl(port) & mask;
	for (int i = 0; i < 200; i++) {
		now = inl(port) & mask;
		if (((now - prev) & mask) > mask / 2)
			steps_back++;
		total += (now - prev) & mask;
		prev = now;
	}
	report(!steps_back && total > 0, "PM timer: 200 reads increase monotonically (%u ticks)",
	       total);
	report(!(inl(port) & ~mask), "PM timer: bits above the %s counter read 0",
	       mask == 0xffffff ? "24-bit" : "32-bit");

	/*
	 * 10 ms of TSC should be 35795 PM ticks at 3.579545 MHz. Under an emulator on a busy host
	 * the TSC and the emulated clocks drift apart for a while, so: up to three tries, each
	 * with a fresh TSC calibration and the lowest of three windows (descheduling only adds
	 * ticks), within 25%.
	 */
	for (int attempt = 0; attempt < 3 && !rate_ok; attempt++) {
		tsc_recalibrate();
		if (!tsc_hz())
			break;
		best = ~0ull;
		for (int i = 0; i < 3; i++) {
			start = inl(port);
			t_end = rdtsc() + tsc_us(10000);
			while (rdtsc() < t_end)
				pause();
			ticks = (inl(port) - start) & mask;
			if (ticks < best)
				best = ticks;
		}
		rate_ok = best * 4 >= PM_TIMER_HZ / 100 * 3 && best * 4 <= PM_TIMER_HZ / 100 * 5;
		printf("PM timer: %llu ticks in 10 ms of TSC at %llu kHz\n", best,
		       udiv64(tsc_hz(), 1000, NULL));
	}
	report(rate_ok, "PM timer counts at 3.579545 MHz against the TSC (35795 per 10 ms, +-25%%)");
}

/* ---- CPU --------------------------------------------------------------------------------- */

static void check_cpuid(void)
{
	struct cpuid_regs l1 = cpuid(1, 0);
	u32 max_basic = cpuid(0, 0).eax, max_ext = cpuid(0x80000000, 0).eax;

	report_umbra(!(l1.ecx & BIT(21)), "CPUID.1:ECX.x2APIC[21] clear");
	report_umbra(!(l1.ecx & BIT(15)), "CPUID.1:ECX.PDCM[15] clear");
	if (max_basic >= 7)
		report_umbra(!(cpuid(7, 0).ecx & BIT(16)), "CPUID.7:ECX.LA57[16] clear");
	else
		report_skip("CPUID leaf 7 absent");
	if (max_ext >= 0x80000008) {
		u32 maxphyaddr = cpuid(0x80000008, 0).eax & 0xff;

		report(maxphyaddr >= 36 && maxphyaddr <= 52, "MAXPHYADDR %u (36-52)", maxphyaddr);
	} else {
		report(false, "CPUID leaf 0x80000008 present (max extended leaf %#x)", max_ext);
	}
}

static void check_vmcall(void)
{
	struct vmcall_regs r = { .ax = 0x7777 };
	bool ud = vmcall_safe(&r);

	report_umbra(!ud && r.ax == (unsigned long)(long)HC_ENOSYS,
		     "VMCALL (unknown function) handled: -38, no #UD, execution goes on after it");
	if (!is_umbra())
		report(ud, "VMCALL raises #UD outside umbra");
}

static void check_cache_insns(void)
{
	expect_exception(GP_VECTOR);
	asm volatile(ASM_TRY("1f") "wbinvd\n1:" ::: "memory");
	report(!exception_caught(), "WBINVD does not fault");
	expect_exception(GP_VECTOR);
	asm volatile(ASM_TRY("1f") "invd\n1:" ::: "memory");
	report(!exception_caught(), "INVD does not fault");
}

#define DR_ACCESSORS(n)                                                        \
	static inline unsigned long read_dr##n(void)                               \
	{                                                                      \
		unsigned long v;                                               \
		asm volatile("mov %%dr" #n ", %0" : "=r"(v));                  \
		return v;                                                      \
	}                                                                      \
	static inline void write_dr##n(unsigned long v)                            \
	{                                                                      \
		asm volatile("mov %0, %%dr" #n : : "r"(v));                    \
	}
DR_ACCESSORS(0)
DR_ACCESSORS(1)
DR_ACCESSORS(2)
DR_ACCESSORS(3)
DR_ACCESSORS(6)
DR_ACCESSORS(7)

#define DR7_FIXED BIT(10)
/* RW=01 (data writes), LEN=01 (2 bytes) for all four; no enable bit, so nothing triggers. */
#define DR7_CONDITIONS 0x55550000ul

static void check_debug_regs(void)
{
#ifdef __x86_64__
	static const unsigned long addr[4] = { 0x1000, 0x7fff12345678, 0xffff800000001000,
					       0xfffffffffffff000 };
#else
	static const unsigned long addr[4] = { 0x1000, 0x12345678, 0x9abcdef0, 0xfffff000 };
#endif
	bool ok;

	write_dr0(addr[0]);
	write_dr1(addr[1]);
	write_dr2(addr[2]);
	write_dr3(addr[3]);
	ok = read_dr0() == addr[0] && read_dr1() == addr[1] && read_dr2() == addr[2] &&
	     read_dr3() == addr[3];
	report(ok, "DR0-DR3 read back what was written");
	write_dr7(DR7_FIXED | DR7_CONDITIONS);
	report(read_dr7() == (DR7_FIXED | DR7_CONDITIONS), "DR7 reads back %#lx",
	       read_dr7());
	write_dr7(DR7_FIXED);
	report((read_dr6() & 0xffff0ff0ul) == 0xffff0ff0ul, "DR6 readable, fixed bits set (%#lx)",
	       read_dr6());
	write_dr0(0);
	write_dr1(0);
	write_dr2(0);
	write_dr3(0);
}

static void check_msrs(void)
{
	static const struct {
		u32 msr;
		const char *name;
	} msrs[] = {
		{ MSR_EFER, "EFER" }, { MSR_IA32_PAT, "PAT" },
		{ MSR_IA32_SYSENTER_CS, "SYSENTER_CS" }, { MSR_IA32_SYSENTER_ESP, "SYSENTER_ESP" },
		{ MSR_IA32_SYSENTER_EIP, "SYSENTER_EIP" }, { MSR_STAR, "STAR" },
		{ MSR_LSTAR, "LSTAR" }, { MSR_CSTAR, "CSTAR" }, { MSR_SFMASK, "SFMASK" },
		{ MSR_KERNEL_GS_BASE, "KERNEL_GS_BASE" }, { MSR_IA32_MISC_ENABLE, "MISC_ENABLE" },
	};
	u64 v;

	bool gp;

	for (unsigned int i = 0; i < ARRAY_SIZE(msrs); i++) {
		gp = rdmsr_safe(msrs[i].msr, &v);
		report(!gp, "RDMSR %s (%#x) without #GP: %#llx", msrs[i].name, msrs[i].msr, v);
	}
	if (cpuid(0, 0).eax >= 7 && (cpuid(7, 0).ebx & BIT(1))) {
		gp = rdmsr_safe(MSR_IA32_TSC_ADJUST, &v);
		report(!gp, "RDMSR TSC_ADJUST without #GP: %#llx", v);
	} else {
		report_skip("TSC_ADJUST: CPUID.7:EBX[1] clear");
	}
}

int main(void)
{
	const struct acpi_header *fadt;

	check_fw_cfg();
	check_cmdline();
	check_com1();
	check_unassigned_ports();
	check_pci();
	fadt = find_fadt();
	if (fadt) {
		check_pm_timer(fadt);
		check_acpi_tables(fadt);
		check_pm1_and_rtc_alarm(fadt);
	}
	check_cpuid();
	check_vmcall();
	check_cache_insns();
	check_debug_regs();
	check_msrs();
	return report_summary();
}
