/*
 * Tests of the ACPI table lookup and MADT parser (arch/x86/acpi.c). Tables
 * are built in a fake physical memory; the map callback hands out exactly the
 * bytes asked for (a copy sized to the request), so ASan reports any read
 * past what the parser asked to map.
 */
#include <string.h>

#include "unit.h"
#include "arch/x86/acpi.h"

#define MEM_SIZE 0x10000
#define RSDP_AT 0x100
#define RSDP2_AT 0x200
#define RSDT_AT 0x1000
#define XSDT_AT 0x2000
#define MADT_AT 0x3000
#define FADT_AT 0x4000

static u8 mem[MEM_SIZE];
static u8 *copies[64];
static int ncopies;

static const u8 *map(u64 phys, u64 len, void *ctx)
{
	u8 *c;

	(void)ctx;
	if (phys >= MEM_SIZE || len > MEM_SIZE - phys || ncopies == 64)
		return NULL;
	c = malloc(len);
	memcpy(c, mem + phys, len);
	copies[ncopies++] = c;
	return c;
}

static void free_copies(void)
{
	while (ncopies)
		free(copies[--ncopies]);
}

static void put32(u8 *p, u32 v) { memcpy(p, &v, 4); }
static void put64(u8 *p, u64 v) { memcpy(p, &v, 8); }

static void fix_checksum(u8 *p, u32 len, u32 at)
{
	u8 sum = 0;

	p[at] = 0;
	for (u32 i = 0; i < len; i++)
		sum = (u8)(sum + p[i]);
	p[at] = (u8)-sum;
}

static void header(u64 at, const char *sig, u32 len)
{
	memcpy(mem + at, sig, 4);
	put32(mem + at + 4, len);
	mem[at + 8] = 1;
}

static void seal(u64 at)
{
	u32 len;

	memcpy(&len, mem + at + 4, 4);
	fix_checksum(mem + at, len, 9);
}

/* An ACPI 1.0 RSDP -> RSDT -> {FADT, MADT with the given local APIC entries}. */
static void build(const u8 *entries, u32 entries_len)
{
	memset(mem, 0, sizeof(mem));
	memcpy(mem + RSDP_AT, "RSD PTR ", 8);
	put32(mem + RSDP_AT + 16, RSDT_AT);
	fix_checksum(mem + RSDP_AT, 20, 8);
	header(RSDT_AT, "RSDT", 36 + 8);
	put32(mem + RSDT_AT + 36, FADT_AT);
	put32(mem + RSDT_AT + 40, MADT_AT);
	seal(RSDT_AT);
	header(FADT_AT, "FACP", 116);
	seal(FADT_AT);
	header(MADT_AT, "APIC", 44 + entries_len);
	put32(mem + MADT_AT + 36, 0xfee00000);
	memcpy(mem + MADT_AT + 44, entries, entries_len);
	seal(MADT_AT);
}

static const u8 two_cpus[] = {
	0, 8, 0, 0, 1, 0, 0, 0,   /* processor 0, APIC ID 0, enabled */
	0, 8, 1, 2, 1, 0, 0, 0,   /* processor 1, APIC ID 2, enabled */
	0, 8, 2, 3, 0, 0, 0, 0,   /* processor 2, APIC ID 3, disabled */
	1, 12, 0, 0, 0, 0, 0xc0, 0xfe, 0, 0, 0, 0,  /* an I/O APIC: skipped */
};

static const u8 *find(const char *sig, char *err)
{
	return acpi_find_table(RSDP_AT, 0, sig, map, NULL, err, 160);
}

TEST(madt_lists_enabled_cpus)
{
	char err[160];
	struct acpi_madt m;
	const u8 *t;

	build(two_cpus, sizeof(two_cpus));
	t = find("APIC", err);
	CHECK(t != NULL);
	CHECK(acpi_parse_madt(t, &m, err, sizeof(err)));
	CHECK_EQ(m.count, 2);
	CHECK_EQ(m.apic_id[0], 0);
	CHECK_EQ(m.apic_id[1], 2);
	CHECK_EQ(m.disabled, 1);
	CHECK_EQ(m.lapic_address, 0xfee00000);
	CHECK(find("FACP", err) != NULL);
	free_copies();
}

TEST(x2apic_entries_and_address_override)
{
	u8 e[16 + 12] = { 9, 16, 0, 0 };
	char err[160];
	struct acpi_madt m;

	put32(e + 4, 0x1234);   /* x2APIC ID */
	put32(e + 8, 1);        /* enabled */
	e[16] = 5;
	e[17] = 12;
	put64(e + 20, 0xfed00000ull);
	build(e, sizeof(e));
	CHECK(acpi_parse_madt(find("APIC", err), &m, err, sizeof(err)));
	CHECK_EQ(m.count, 1);
	CHECK_EQ(m.apic_id[0], 0x1234);
	CHECK_EQ(m.lapic_address, 0xfed00000ull);
	free_copies();
}

TEST(xsdt_of_an_acpi2_rsdp_wins)
{
	char err[160];
	struct acpi_madt m;
	u8 one[] = { 0, 8, 0, 7, 1, 0, 0, 0 };

	build(two_cpus, sizeof(two_cpus));
	/* A second MADT, reached only through the XSDT. */
	header(0x5000, "APIC", 44 + sizeof(one));
	memcpy(mem + 0x5000 + 44, one, sizeof(one));
	seal(0x5000);
	header(XSDT_AT, "XSDT", 36 + 8);
	put64(mem + XSDT_AT + 36, 0x5000);
	seal(XSDT_AT);
	memcpy(mem + RSDP2_AT, "RSD PTR ", 8);
	mem[RSDP2_AT + 15] = 2;
	put32(mem + RSDP2_AT + 16, RSDT_AT);
	put32(mem + RSDP2_AT + 20, 36);
	put64(mem + RSDP2_AT + 24, XSDT_AT);
	fix_checksum(mem + RSDP2_AT, 20, 8);
	fix_checksum(mem + RSDP2_AT, 36, 32);
	CHECK(acpi_parse_madt(acpi_find_table(RSDP_AT, RSDP2_AT, "APIC", map, NULL, err,
					      sizeof(err)), &m, err, sizeof(err)));
	CHECK_EQ(m.count, 1);
	CHECK_EQ(m.apic_id[0], 7);
	free_copies();
}

TEST(bad_checksums_are_refused_with_a_reason)
{
	char err[160];

	build(two_cpus, sizeof(two_cpus));
	mem[MADT_AT + 44 + 3] ^= 1;  /* an APIC ID changed, checksum not */
	CHECK(find("APIC", err) == NULL);
	CHECK(strstr(err, "APIC at 0x3000 has a bad checksum") != NULL);

	build(two_cpus, sizeof(two_cpus));
	mem[RSDT_AT + 36] ^= 1;
	CHECK(find("APIC", err) == NULL);
	CHECK(strstr(err, "RSDT") && strstr(err, "bad checksum"));

	build(two_cpus, sizeof(two_cpus));
	mem[RSDP_AT + 16] ^= 1;
	CHECK(find("APIC", err) == NULL);
	CHECK(strstr(err, "RSDP has a bad signature or checksum") != NULL);
	free_copies();
}

TEST(missing_and_malformed_tables)
{
	char err[160];
	struct acpi_madt m;
	u8 zero_len[] = { 0, 0, 0, 0 };
	u8 past_end[] = { 0, 8, 0, 1, 1, 0 };  /* claims 8 bytes, has 6 */

	build(two_cpus, sizeof(two_cpus));
	CHECK(find("HPET", err) == NULL);
	CHECK(strstr(err, "no HPET table in the RSDT") != NULL);
	CHECK(acpi_find_table(0, 0, "APIC", map, NULL, err, sizeof(err)) == NULL);
	CHECK(strstr(err, "no ACPI RSDP") != NULL);

	build(zero_len, sizeof(zero_len));  /* would loop forever if accepted */
	CHECK(!acpi_parse_madt(find("APIC", err), &m, err, sizeof(err)));
	CHECK(strstr(err, "bad length 0") != NULL);
	build(past_end, sizeof(past_end));
	CHECK(!acpi_parse_madt(find("APIC", err), &m, err, sizeof(err)));
	CHECK(strstr(err, "bad length 8") != NULL);

	build(two_cpus + 24, 12);  /* only an I/O APIC */
	CHECK(!acpi_parse_madt(find("APIC", err), &m, err, sizeof(err)));
	CHECK(strstr(err, "no enabled processor") != NULL);

	build(two_cpus, sizeof(two_cpus));
	put32(mem + MADT_AT + 4, 0x20000);  /* longer than the memory */
	CHECK(find("APIC", err) == NULL);
	CHECK(strstr(err, "bad length") != NULL);
	free_copies();
}

UNIT_MAIN()
