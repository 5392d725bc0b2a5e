/* The guest's ACPI tables (devices/acpi_tables.c): RSDP, RSDT, XSDT, FADT, FACS, MADT. */
#ifndef DEVICES_ACPI_TABLES_H
#define DEVICES_ACPI_TABLES_H

#include "guest/guest.h"
#include "devices/types.h"

#define ACPI_MAX_VCPUS 255
/* Where the FADT points the guest for its power-management registers. */
#define ACPI_PM1A_EVT_PORT 0x600   /* PM1a status (2 bytes), enable (2 bytes) */
#define ACPI_PM1A_CNT_PORT 0x604   /* PM1a control (2 bytes) */
#define ACPI_PM_TMR_PORT 0x608     /* PM timer (4 bytes, 24-bit count) */

/*
 * Write RSDP (at 0xe0000, ACPI 2.0: RSDT and XSDT), RSDT, XSDT, FADT, FACS
 * and MADT into guest RAM in the BIOS area 0xe0000-0xe0fff. The MADT lists
 * nr_vcpus processor-local APICs, APIC IDs and processor UIDs 0..nr_vcpus-1,
 * the local APIC at 0xfee00000, PCAT_COMPAT (an 8259 pair) and no I/O APIC.
 * false: nr_vcpus is 0 or above ACPI_MAX_VCPUS, or guest RAM has no room.
 */
bool acpi_tables_write(struct guest *g, unsigned nr_vcpus);
/* The real-mode waking vector the guest left in its FACS (ACPI 6.5 5.2.10:
 * Firmware Waking Vector), read when it wakes from S3. */
u32 acpi_waking_vector(struct guest *g);

#endif
