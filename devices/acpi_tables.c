/*
 * The guest's ACPI tables, written into the BIOS area as firmware leaves
 * them (ACPI 6.5 chapter 5): an ACPI 2.0 RSDP on a 16-byte boundary in
 * 0xe0000-0xfffff (where Linux and kvm-unit-tests scan, 5.2.5.1), an RSDT
 * and an XSDT listing the FADT and the MADT, the FADT (ACPI 1.0 layout:
 * the PM1a event and control blocks, the PM timer, the FACS; no DSDT, no
 * SMI command port, so the platform is always in ACPI mode and SCI_EN
 * reads 1), a 64-byte-aligned FACS that holds the OS's waking vector, and
 * a MADT of one local APIC per vCPU. There is no I/O APIC: the MADT says
 * so by listing none, and PCAT_COMPAT says the 8259 pair is there.
 */
#include <string.h>
#include "devices/acpi_tables.h"
#include "guest/memory.h"

#define ACPI_RSDP_GPA 0xe0000ull
#define ACPI_RSDT_GPA 0xe0040ull
#define ACPI_XSDT_GPA 0xe0080ull
#define ACPI_FADT_GPA 0xe0100ull
#define ACPI_FACS_GPA 0xe0180ull   /* 64-byte aligned (5.2.10) */
#define ACPI_MADT_GPA 0xe0200ull
#define ACPI_AREA_END 0xe1000ull
#define LAPIC_BASE 0xfee00000u

struct acpi_header {
	char signature[4];
	u32 length;
	u8 revision, checksum;
	char oem_id[6], oem_table_id[8];
	u32 oem_revision;
	char creator_id[4];
	u32 creator_revision;
} PACKED;

/* ACPI 1.0 FADT fields by offset (5.2.9, Table 5.9). */
#define FADT_LENGTH 116
#define FADT_FIRMWARE_CTRL 36
#define FADT_SCI_INT 46
#define FADT_PM1A_EVT_BLK 56
#define FADT_PM1A_CNT_BLK 64
#define FADT_PM_TMR_BLK 76
#define FADT_PM1_EVT_LEN 88
#define FADT_PM1_CNT_LEN 89
#define FADT_PM_TMR_LEN 91
#define FADT_CENTURY 108
#define FADT_FLAGS 112
#define FADT_WBINVD (1u << 0)
#define SCI_IRQ 9                  /* where PC chipsets wire it */
#define RTC_CENTURY_INDEX 0x32

#define FACS_LENGTH 64
#define FACS_WAKING_VECTOR 12

#define MADT_PCAT_COMPAT 1u
#define MADT_LAPIC 0               /* Processor Local APIC structure (5.2.12.2) */
#define MADT_LAPIC_ENABLED 1u

struct madt_lapic {
	u8 type, length, uid, apic_id;
	u32 flags;
} PACKED;

static u8 checksum(const void *p, u32 len)
{
	const u8 *b = p;
	u8 sum = 0;

	for (u32 i = 0; i < len; i++)
		sum += b[i];
	return (u8)-sum;
}

static void acpi_header(void *table, const char *sig, u32 length, u8 revision)
{
	struct acpi_header *h = table;

	memcpy(h->signature, sig, 4);
	h->length = length;
	h->revision = revision;
	memcpy(h->oem_id, "UMBRA ", 6);
	memcpy(h->oem_table_id, "UMBRAHV ", 8);
	h->oem_revision = 1;
	memcpy(h->creator_id, "UMBR", 4);
	h->creator_revision = 1;
	h->checksum = 0;
	h->checksum = checksum(table, length);
}

static void put32(u8 *table, unsigned offset, u32 v)
{
	memcpy(table + offset, &v, 4);
}

static bool write_rsdp(struct guest *g)
{
	struct {
		char signature[8];
		u8 checksum;
		char oem_id[6];
		u8 revision;
		u32 rsdt;
		u32 length;
		u64 xsdt;
		u8 extended_checksum, reserved[3];
	} PACKED rsdp = { .revision = 2, .rsdt = (u32)ACPI_RSDT_GPA,
			  .length = sizeof(rsdp), .xsdt = ACPI_XSDT_GPA };

	memcpy(rsdp.signature, "RSD PTR ", 8);
	memcpy(rsdp.oem_id, "UMBRA ", 6);
	rsdp.checksum = checksum(&rsdp, 20);  /* the ACPI 1.0 part (5.2.5.3) */
	rsdp.extended_checksum = checksum(&rsdp, sizeof(rsdp));
	return guest_copy_to(g, ACPI_RSDP_GPA, &rsdp, sizeof(rsdp));
}

static bool write_sdts(struct guest *g)
{
	struct {
		struct acpi_header h;
		u32 entry[2];
	} PACKED rsdt = { .entry = { (u32)ACPI_FADT_GPA, (u32)ACPI_MADT_GPA } };
	struct {
		struct acpi_header h;
		u64 entry[2];
	} PACKED xsdt = { .entry = { ACPI_FADT_GPA, ACPI_MADT_GPA } };

	acpi_header(&rsdt, "RSDT", sizeof(rsdt), 1);
	acpi_header(&xsdt, "XSDT", sizeof(xsdt), 1);
	return guest_copy_to(g, ACPI_RSDT_GPA, &rsdt, sizeof(rsdt)) &&
	       guest_copy_to(g, ACPI_XSDT_GPA, &xsdt, sizeof(xsdt));
}

static bool write_fadt_facs(struct guest *g)
{
	u8 fadt[FADT_LENGTH] = { 0 };
	u8 facs[FACS_LENGTH] = { 0 };

	put32(fadt, FADT_FIRMWARE_CTRL, (u32)ACPI_FACS_GPA);
	fadt[FADT_SCI_INT] = SCI_IRQ;
	put32(fadt, FADT_PM1A_EVT_BLK, ACPI_PM1A_EVT_PORT);
	put32(fadt, FADT_PM1A_CNT_BLK, ACPI_PM1A_CNT_PORT);
	put32(fadt, FADT_PM_TMR_BLK, ACPI_PM_TMR_PORT);
	fadt[FADT_PM1_EVT_LEN] = 4;
	fadt[FADT_PM1_CNT_LEN] = 2;
	fadt[FADT_PM_TMR_LEN] = 4;
	fadt[FADT_CENTURY] = RTC_CENTURY_INDEX;
	put32(fadt, FADT_FLAGS, FADT_WBINVD);
	acpi_header(fadt, "FACP", FADT_LENGTH, 1);

	memcpy(facs, "FACS", 4);
	put32(facs, 4, FACS_LENGTH);
	return guest_copy_to(g, ACPI_FADT_GPA, fadt, sizeof(fadt)) &&
	       guest_copy_to(g, ACPI_FACS_GPA, facs, sizeof(facs));
}

static bool write_madt(struct guest *g, unsigned nr_vcpus)
{
	u8 madt[sizeof(struct acpi_header) + 8 + ACPI_MAX_VCPUS * sizeof(struct madt_lapic)];
	u32 length = sizeof(struct acpi_header) + 8 + nr_vcpus * sizeof(struct madt_lapic);

	memset(madt, 0, sizeof(madt));
	put32(madt, sizeof(struct acpi_header), LAPIC_BASE);
	put32(madt, sizeof(struct acpi_header) + 4, MADT_PCAT_COMPAT);
	for (unsigned i = 0; i < nr_vcpus; i++) {
		struct madt_lapic l = { .type = MADT_LAPIC, .length = sizeof(l), .uid = (u8)i,
					.apic_id = (u8)i, .flags = MADT_LAPIC_ENABLED };

		memcpy(madt + sizeof(struct acpi_header) + 8 + i * sizeof(l), &l, sizeof(l));
	}
	acpi_header(madt, "APIC", length, 1);
	return guest_copy_to(g, ACPI_MADT_GPA, madt, length);
}

bool acpi_tables_write(struct guest *g, unsigned nr_vcpus)
{
	_Static_assert(ACPI_MADT_GPA + sizeof(struct acpi_header) + 8 +
		       ACPI_MAX_VCPUS * sizeof(struct madt_lapic) <= ACPI_AREA_END,
		       "the MADT fits the BIOS-area page");

	return nr_vcpus >= 1 && nr_vcpus <= ACPI_MAX_VCPUS && g->mem.size >= ACPI_AREA_END &&
	       write_rsdp(g) && write_sdts(g) && write_fadt_facs(g) && write_madt(g, nr_vcpus);
}

u32 acpi_waking_vector(struct guest *g)
{
	const u32 *vector = guest_gpa_ptr(g, ACPI_FACS_GPA + FACS_WAKING_VECTOR, 4);

	return vector ? *vector : 0;
}
