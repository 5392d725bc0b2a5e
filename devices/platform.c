/*
 * The rest of the PC platform QEMU-style test kernels expect
 * (tests/guests/PLATFORM.md): fw_cfg, PCI configuration ports with no
 * devices, the ACPI PM timer, the test device (a
 * port latch at 0xe0 and a RAM-like page at 0xff000000 whose every access
 * is emulated).
 */
#include <string.h>
#include "devices/platform.h"
#include "devices/acpi_tables.h"
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
	case FW_CFG_MAX_CPUS: value = (u64)g->nr_vcpus; break;
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

bool testdev_mmio(struct vcpu *v, u64 offset, void *buf, unsigned len, bool write)
{
	struct guest *g = v->g;

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

/* ---- ACPI PM timer (its tables: devices/acpi_tables.c) ------------------------- */

#define PM_TIMER_HZ 3579545ull

bool pm_timer_io(struct guest *g, u16 port, unsigned size, bool in, u32 *value)
{
	u64 khz = machine_timing_khz();

	if (!in)
		return true;
	/* A 24-bit counter at 3.579545 MHz of guest time (ACPI 4.8.3.3). */
	*value = (u32)((guest_tsc(g) * PM_TIMER_HZ / (khz * 1000)) & 0xffffff);
	*value >>= 8 * (port - ACPI_PM_TMR_PORT);
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
