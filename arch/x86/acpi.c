/* ACPI table lookup and MADT parsing (see acpi.h). */
#include <stdio.h>
#include <string.h>
#include "arch/x86/acpi.h"

#define SDT_HEADER 36
#define RSDP_V1_LEN 20
#define RSDP_V2_LEN 36
#define MAX_TABLE (1u << 20)
#define MADT_ENTRIES 44            /* after the header, LAPIC address and flags */
#define MADT_LAPIC 0
#define MADT_LAPIC_OVERRIDE 5
#define MADT_X2APIC 9
#define MADT_ENABLED BIT(0)

static bool checksum_ok(const u8 *p, u32 len)
{
	u8 sum = 0;

	for (u32 i = 0; i < len; i++)
		sum = (u8)(sum + p[i]);
	return sum == 0;
}

u32 acpi_table_length(const u8 *table)
{
	return (u32)le_load(table + 4, 4);
}

/* A whole table with signature sig at phys, its checksum right, or NULL. */
static const u8 *map_table(u64 phys, const char *sig, acpi_map_fn map, void *ctx, char *err,
			   size_t err_len)
{
	const u8 *t = phys ? map(phys, SDT_HEADER, ctx) : NULL;
	u32 len;

	if (!t) {
		snprintf(err, err_len, "%s at %#llx cannot be read", sig, (unsigned long long)phys);
		return NULL;
	}
	if (memcmp(t, sig, 4)) {
		snprintf(err, err_len, "%#llx holds '%.4s', not %s", (unsigned long long)phys,
			 (const char *)t, sig);
		return NULL;
	}
	len = acpi_table_length(t);
	if (len < SDT_HEADER || len > MAX_TABLE || !(t = map(phys, len, ctx))) {
		snprintf(err, err_len, "%s at %#llx has a bad length %u", sig,
			 (unsigned long long)phys, len);
		return NULL;
	}
	if (!checksum_ok(t, len)) {
		snprintf(err, err_len, "%s at %#llx has a bad checksum", sig,
			 (unsigned long long)phys);
		return NULL;
	}
	return t;
}

/* The RSDT or XSDT an RSDP copy names; *entry_size 4 or 8. */
static const u8 *root_table(u64 rsdp, u64 rsdp_v2, acpi_map_fn map, void *ctx, u32 *entry_size,
			    char *err, size_t err_len)
{
	const u8 *r;

	if (rsdp_v2 && (r = map(rsdp_v2, RSDP_V2_LEN, ctx)) && r[15] >= 2) {
		if (memcmp(r, "RSD PTR ", 8) || !checksum_ok(r, RSDP_V1_LEN) ||
		    !checksum_ok(r, RSDP_V2_LEN)) {
			snprintf(err, err_len, "the ACPI 2.0 RSDP has a bad signature or checksum");
			return NULL;
		}
		*entry_size = 8;
		return map_table(le_load(r + 24, 8), "XSDT", map, ctx, err, err_len);
	}
	if (!rsdp)
		rsdp = rsdp_v2;
	if (!rsdp || !(r = map(rsdp, RSDP_V1_LEN, ctx))) {
		snprintf(err, err_len, "the boot loader gave no ACPI RSDP");
		return NULL;
	}
	if (memcmp(r, "RSD PTR ", 8) || !checksum_ok(r, RSDP_V1_LEN)) {
		snprintf(err, err_len, "the RSDP has a bad signature or checksum");
		return NULL;
	}
	*entry_size = 4;
	return map_table((u32)le_load(r + 16, 4), "RSDT", map, ctx, err, err_len);
}

const u8 *acpi_find_table(u64 rsdp, u64 rsdp_v2, const char *sig, acpi_map_fn map, void *ctx,
			  char *err, size_t err_len)
{
	u32 entry_size;
	const u8 *sdt = root_table(rsdp, rsdp_v2, map, ctx, &entry_size, err, err_len);

	if (!sdt)
		return NULL;
	for (u32 off = SDT_HEADER; off + entry_size <= acpi_table_length(sdt); off += entry_size) {
		u64 addr = entry_size == 8 ? le_load(sdt + off, 8) : (u32)le_load(sdt + off, 4);
		const u8 *t = addr ? map(addr, SDT_HEADER, ctx) : NULL;

		if (t && !memcmp(t, sig, 4))
			return map_table(addr, sig, map, ctx, err, err_len);
	}
	snprintf(err, err_len, "no %s table in the %s", sig, entry_size == 8 ? "XSDT" : "RSDT");
	return NULL;
}

static void add_cpu(struct acpi_madt *out, u32 apic_id, u32 flags)
{
	if (!(flags & MADT_ENABLED)) {
		out->disabled++;  /* online-capable ones need hot-add, which umbra has not */
		return;
	}
	if (out->count == ACPI_MAX_CPUS) {
		out->beyond++;
		return;
	}
	out->apic_id[out->count++] = apic_id;
}

bool acpi_parse_madt(const u8 *madt, struct acpi_madt *out, char *err, size_t err_len)
{
	u32 len = acpi_table_length(madt);

	memset(out, 0, sizeof(*out));
	if (len < MADT_ENTRIES) {
		snprintf(err, err_len, "MADT of %u bytes is shorter than its fixed part", len);
		return false;
	}
	out->lapic_address = (u32)le_load(madt + 36, 4);
	for (u32 off = MADT_ENTRIES; off < len;) {
		u8 type = madt[off], elen = off + 1 < len ? madt[off + 1] : 0;

		if (elen < 2 || off + elen > len) {
			snprintf(err, err_len, "MADT entry at offset %u (type %u) has a bad length %u",
				 off, type, elen);
			return false;
		}
		if (type == MADT_LAPIC && elen >= 8)
			add_cpu(out, madt[off + 3], (u32)le_load(madt + off + 4, 4));
		else if (type == MADT_X2APIC && elen >= 16)
			add_cpu(out, (u32)le_load(madt + off + 4, 4), (u32)le_load(madt + off + 8, 4));
		else if (type == MADT_LAPIC_OVERRIDE && elen >= 12)
			out->lapic_address = le_load(madt + off + 4, 8);
		off += elen;
	}
	if (!out->count) {
		snprintf(err, err_len, "the MADT lists no enabled processor");
		return false;
	}
	return true;
}
