/*
 * ACPI tables the hypervisor reads: a table by signature through the RSDP,
 * then RSDT or XSDT (ACPI 6.5 sections 5.2.5-5.2.8), and the processors of
 * the MADT (5.2.12). Checksums are checked on the RSDP and every table.
 * Pure logic: tables are reached through a map callback (identity in the
 * hypervisor, a buffer in the host unit test).
 */
#ifndef ARCH_X86_ACPI_H
#define ARCH_X86_ACPI_H

#include "lib/types.h"

#define ACPI_MAX_CPUS 64

/* The readable bytes at physical address phys, len long, or NULL. */
typedef const u8 *(*acpi_map_fn)(u64 phys, u64 len, void *ctx);

/*
 * The table with signature sig (e.g. "FACP", "APIC"), found through the XSDT
 * of an ACPI 2.0+ RSDP, else the RSDT. rsdp and rsdp_v2 are the loader's
 * copies (multiboot2 tags 14 and 15), 0 if absent. NULL with a reason in err
 * when there is no such table or a table on the way is bad.
 */
const u8 *acpi_find_table(u64 rsdp, u64 rsdp_v2, const char *sig, acpi_map_fn map, void *ctx,
			  char *err, size_t err_len);
u32 acpi_table_length(const u8 *table);

struct acpi_madt {
	u64 lapic_address;      /* after any address override (type 5) */
	int count;              /* enabled processors, in table order */
	u32 apic_id[ACPI_MAX_CPUS];
	int disabled;           /* entries neither enabled nor online-capable */
	int beyond;             /* enabled ones past ACPI_MAX_CPUS */
};

/* The processors of a MADT (types 0 and 9). False with a reason when it is malformed. */
bool acpi_parse_madt(const u8 *madt, struct acpi_madt *out, char *err, size_t err_len);

#endif
