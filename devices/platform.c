/*
 * The rest of the PC platform QEMU-style test kernels expect
 * (tests/guests/PLATFORM.md): fw_cfg, PCI configuration ports with no
 * devices, the ACPI PM timer and minimal ACPI tables, the test device (a
 * port latch at 0xe0 and a RAM-like page at 0xff000000 whose every access
 * is emulated).
 */
#include <string.h>
#include "devices/platform.h"
#include "guest/memory.h"
#include "arch/x86/machine.h"
#include "mm/mm.h"

/* ---- fw_cfg (QEMU docs/specs/fw_cfg.rst): select at 0x510, data at 0x511 -------- */

#define FW_CFG_SIGNATURE 0x00
#define FW_CFG_ID 0x01
#define FW_CFG_RAM_SIZE 0x03
#define FW_CFG_NB_CPUS 0x05
#define FW_CFG_MAX_CPUS 0x0f
#define FW_CFG_MAX_RAM 0x11   /* kvm-unit-tests' key: highest RAM address */

static u8 fw_cfg_byte(struct guest *g, u16 key, u32 offset)
{
	u64 value;

	switch (key) {
	case FW_CFG_SIGNATURE:
		return offset < 4 ? (u8)"QEMU"[offset] : 0;
	case FW_CFG_ID: value = 1; break;
	case FW_CFG_RAM_SIZE:
	case FW_CFG_MAX_RAM: value = g->mem.size; break;
	case FW_CFG_NB_CPUS:
	case FW_CFG_MAX_CPUS: value = 1; break;
	default: return 0;
	}
	return offset < 8 ? (u8)(value >> (8 * offset)) : 0;
}

bool fw_cfg_io(struct guest *g, u16 port, unsigned size, bool in, u32 *value)
{
	if (port == 0x510) {
		if (!in) {
			g->dev->fw_cfg_key = (u16)*value;
			g->dev->fw_cfg_offset = 0;
		} else {
			*value = g->dev->fw_cfg_key;
		}
		return true;
	}
	if (!in)
		return true;
	*value = 0;
	for (unsigned b = 0; b < size; b++)
		*value |= (u32)fw_cfg_byte(g, g->dev->fw_cfg_key, g->dev->fw_cfg_offset++) << (8 * b);
	return true;
}

/* ---- PCI configuration mechanism #1: an address latch, and no devices ------- */

bool pci_config_io(struct guest *g, u16 port, unsigned size, bool in, u32 *value)
{
	if (port == 0xcf8 && size == 4) {
		if (in)
			*value = g->dev->pci_address;
		else
			g->dev->pci_address = *value & 0x80fffffcu;
		return true;
	}
	if (in)  /* vendor 0xffff everywhere: "no device" */
		*value = size == 4 ? ~0u : (1u << (8 * size)) - 1;
	return true;
}

/* ---- test device: port 0xe0 latch and the MMIO page -------------------------- */

bool testdev_io(struct guest *g, u16 port, unsigned size, bool in, u32 *value)
{
	u32 mask = size == 4 ? ~0u : (1u << (8 * size)) - 1;

	(void)port;
	if (in)
		*value = g->dev->testdev_latch & mask;
	else
		g->dev->testdev_latch = *value & mask;
	return true;
}

bool testdev_mmio(struct guest *g, u64 offset, void *buf, unsigned len, bool write)
{
	if (!g->dev->testdev_page) {
		g->dev->testdev_page = alloc_zeroed_pages(1);
		if (!g->dev->testdev_page)
			return false;
	}
	if (write)
		memcpy(g->dev->testdev_page + offset, buf, len);
	else
		memcpy(buf, g->dev->testdev_page + offset, len);
	return true;
}

void testdev_free(struct guest *g)
{
	if (g->dev->testdev_page)
		free_pages(g->dev->testdev_page, 1);
	g->dev->testdev_page = NULL;
}

/* ---- ACPI: PM timer and the tables that announce it --------------------------- */

#define PM_TIMER_PORT 0x608
#define PM_TIMER_HZ 3579545ull

bool pm_timer_io(struct guest *g, u16 port, unsigned size, bool in, u32 *value)
{
	u64 khz = machine_timing_khz();

	if (!in)
		return true;
	/* A 24-bit counter at 3.579545 MHz of guest time (ACPI 4.8.3.3). */
	*value = (u32)((guest_tsc(g) * PM_TIMER_HZ / (khz * 1000)) & 0xffffff);
	*value >>= 8 * (port - PM_TIMER_PORT);
	if (size < 4)
		*value &= (1u << (8 * size)) - 1;
	return true;
}

bool ignored_io(struct guest *g, u16 port, unsigned size, bool in, u32 *value)
{
	(void)g, (void)port;
	if (in)
		*value = size == 4 ? ~0u : (1u << (8 * size)) - 1;
	return true;
}

struct acpi_header {
	char signature[4];
	u32 length;
	u8 revision, checksum;
	char oem_id[6], oem_table_id[8];
	u32 oem_revision;
	char creator_id[4];
	u32 creator_revision;
} PACKED;

#define ACPI_RSDP_GPA 0xe0000ull
#define ACPI_RSDT_GPA 0xe0040ull
#define ACPI_FADT_GPA 0xe0080ull
#define FADT_LENGTH 116   /* ACPI 1.0 FADT */
#define FADT_PM_TMR_BLK 76
#define FADT_PM_TMR_LEN 91

static u8 checksum(const u8 *p, u32 len)
{
	u8 sum = 0;

	for (u32 i = 0; i < len; i++)
		sum += p[i];
	return (u8)-sum;
}

static void acpi_header(struct acpi_header *h, const char *sig, u32 length)
{
	memcpy(h->signature, sig, 4);
	h->length = length;
	h->revision = 1;
	memcpy(h->oem_id, "UMBRA ", 6);
	memcpy(h->oem_table_id, "UMBRAHV ", 8);
	memcpy(h->creator_id, "UMBR", 4);
}

bool acpi_tables_write(struct guest *g)
{
	struct {
		char signature[8];
		u8 checksum;
		char oem_id[6];
		u8 revision;
		u32 rsdt;
	} PACKED rsdp = { .revision = 0, .rsdt = (u32)ACPI_RSDT_GPA };
	struct {
		struct acpi_header h;
		u32 entry[1];
	} PACKED rsdt = { .entry = { (u32)ACPI_FADT_GPA } };
	u8 fadt[FADT_LENGTH] = { 0 };
	u32 pm_tmr = PM_TIMER_PORT;

	memcpy(rsdp.signature, "RSD PTR ", 8);
	memcpy(rsdp.oem_id, "UMBRA ", 6);
	rsdp.checksum = checksum((const u8 *)&rsdp, sizeof(rsdp));
	acpi_header(&rsdt.h, "RSDT", sizeof(rsdt));
	rsdt.h.checksum = checksum((const u8 *)&rsdt, sizeof(rsdt));
	acpi_header((struct acpi_header *)fadt, "FACP", FADT_LENGTH);
	memcpy(fadt + FADT_PM_TMR_BLK, &pm_tmr, 4);
	fadt[FADT_PM_TMR_LEN] = 4;
	((struct acpi_header *)fadt)->checksum = checksum(fadt, FADT_LENGTH);

	return g->mem.size > ACPI_FADT_GPA + FADT_LENGTH &&
	       guest_copy_to(g, ACPI_RSDP_GPA, &rsdp, sizeof(rsdp)) &&
	       guest_copy_to(g, ACPI_RSDT_GPA, &rsdt, sizeof(rsdt)) &&
	       guest_copy_to(g, ACPI_FADT_GPA, fadt, sizeof(fadt));
}
