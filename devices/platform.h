/* Firmware-facing pieces of the PC platform: fw_cfg, PCI configuration ports, the test device, the ACPI PM timer (devices/platform.c). */
#ifndef DEVICES_PLATFORM_H
#define DEVICES_PLATFORM_H

#include "guest/guest.h"
#include "devices/types.h"

bool fw_cfg_io(struct guest *g, u16 port, unsigned size, bool in, u32 *value);
bool pci_config_io(struct guest *g, u16 port, unsigned size, bool in, u32 *value);
bool testdev_io(struct guest *g, u16 port, unsigned size, bool in, u32 *value);
bool testdev_mmio(struct vcpu *v, u64 offset, void *buf, unsigned len, bool write);
void testdev_free(struct guest *g);
bool pm_timer_io(struct guest *g, u16 port, unsigned size, bool in, u32 *value);
bool ignored_io(struct guest *g, u16 port, unsigned size, bool in, u32 *value);

#endif
