/*
 * libFuzzer target: random bytes as the physical memory a firmware's ACPI
 * tables live in, for acpi_find_table and acpi_parse_madt (arch/x86/acpi.c):
 * the input is physical memory from IMAGE_BASE (address 0 means "no RSDP" to the
 * parser), the RSDP at its start, the ACPI 2.0 copy 64 bytes in (when byte 0 of
 * the input is odd).
 * The rest of the input after byte 0 is also parsed as a MADT directly (its
 * length field set to its size), as a checksum rarely comes out right.
 * The map callback hands out exactly the bytes asked for in a heap copy, so
 * ASan catches a read past what the parser mapped; a parsed MADT must keep
 * its counts within bounds.
 */
#include <stdlib.h>
#include <string.h>

#include "arch/x86/acpi.h"

#define IMAGE_BASE 0x1000

struct image {
	const u8 *data;
	size_t size;
	u8 *copies[64];
	int n;
};

static const u8 *map(u64 phys, u64 len, void *ctx)
{
	struct image *im = ctx;
	u8 *c;

	if (phys < IMAGE_BASE)
		return NULL;
	phys -= IMAGE_BASE;
	if (phys >= im->size || len > im->size - phys || im->n == 64)
		return NULL;
	c = malloc(len ? len : 1);
	memcpy(c, im->data + phys, len);
	im->copies[im->n++] = c;
	return c;
}

int LLVMFuzzerTestOneInput(const u8 *data, size_t size)
{
	struct image im = { data, size, { 0 }, 0 };
	struct acpi_madt m;
	char err[160] = "";
	const u8 *t;

	if (size < 1)
		return 0;
	if (size >= 1 + 36) {
		u32 n = (u32)(size - 1 > (1u << 20) ? 1u << 20 : size - 1);
		u8 *madt = malloc(n);

		memcpy(madt, data + 1, n);
		memcpy(madt + 4, &n, 4);
		if (acpi_parse_madt(madt, &m, err, sizeof(err)) &&
		    (m.count < 1 || m.count > ACPI_MAX_CPUS))
			abort();
		free(madt);
	}
	t = acpi_find_table(IMAGE_BASE, data[0] & 1 ? IMAGE_BASE + 64 : 0, "APIC", map, &im, err, sizeof(err));
	if (t && acpi_parse_madt(t, &m, err, sizeof(err)) &&
	    (m.count < 1 || m.count > ACPI_MAX_CPUS || m.disabled < 0 || m.beyond < 0))
		abort();
	if (!memchr(err, 0, sizeof(err)))
		abort();
	while (im.n)
		free(im.copies[--im.n]);
	return 0;
}
