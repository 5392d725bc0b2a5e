/*
 * libFuzzer target: the input is a walk context, an access list and guest
 * RAM contents. The walker (shadow/gwalk.c) and the reference MMU
 * (tests/unit/refmmu.c) run on separate copies of RAM and must agree on
 * every result and every A/D side effect.
 *
 * Input layout: 32 header bytes (control bits, MAXPHYADDR, CR3, PDPTE
 * choice), then 8 access records of 9 bytes (gva + access kind), then up to
 * 4 pages of RAM (missing bytes are zero).
 */
#include <stdlib.h>
#include <string.h>

#include "shadow/gwalk.h"
#include "tests/unit/refmmu.h"

#define FUZZ_PAGES 4
#define HEADER 32
#define ACCESSES 8

static u8 ram_a[FUZZ_PAGES * 4096], ram_b[FUZZ_PAGES * 4096];

static const u32 access_kinds[] = {
	0, GACC_WRITE, GACC_FETCH,
	GACC_USER, GACC_USER | GACC_WRITE, GACC_USER | GACC_FETCH,
	GACC_IMPLICIT, GACC_IMPLICIT | GACC_WRITE,
};

static u64 get64(const u8 *p)
{
	u64 v;

	memcpy(&v, p, 8);
	return v;
}

int LLVMFuzzerTestOneInput(const u8 *data, size_t size)
{
	struct gwalk_ctx ctx = { 0 };
	struct ref_ram a, b;
	size_t body = HEADER + ACCESSES * 9;
	u8 h[HEADER + ACCESSES * 9] = { 0 };
	u32 flags;

	memcpy(h, data, size < body ? size : body);
	memset(ram_a, 0, sizeof(ram_a));
	if (size > body) {
		size_t n = size - body < sizeof(ram_a) ? size - body : sizeof(ram_a);

		memcpy(ram_a, data + body, n);
	}
	memcpy(ram_b, ram_a, sizeof(ram_b));
	ref_ram_init(&a, ram_a, FUZZ_PAGES);
	ref_ram_init(&b, ram_b, FUZZ_PAGES);

	flags = h[0] | h[1] << 8;
	ctx.cr0 = (flags & 1 ? CR0_PG : 0) | (flags & 2 ? CR0_WP : 0);
	ctx.cr4 = (flags & 4 ? CR4_PAE : 0) | (flags & 8 ? CR4_PSE : 0) |
		  (flags & 16 ? CR4_PGE : 0) | (flags & 32 ? CR4_SMEP : 0) |
		  (flags & 64 ? CR4_SMAP : 0);
	ctx.efer = (flags & 128 ? EFER_NXE : 0) | (flags & 256 ? EFER_LMA : 0);
	ctx.rflags_ac = flags & 512;
	ctx.maxphyaddr = 32 + h[2] % 21;
	ctx.cr3 = get64(h + 3) & 0xffffffffffffull;
	for (int i = 0; i < 4; i++) {	/* PDPTE registers: from the header or from RAM */
		u64 at = ((ctx.cr3 & 0x3fe0) + 8 * i) % sizeof(ram_a);

		ctx.pdpte[i] = (flags & 1024) ? (u64)h[11 + i * 5] << 12 | h[12 + i * 5]
					      : get64(ram_a + at);
	}

	for (int i = 0; i < ACCESSES; i++) {
		const u8 *rec = h + HEADER + i * 9;
		u64 gva = get64(rec);
		u32 access = access_kinds[rec[8] % 8];
		struct gwalk_result g;
		struct ref_result r;

		gwalk(&ctx, &a.mem, gva, access, &g);
		ref_translate(&ctx, &b.mem, gva, access, &r);
		if (g.status != r.status)
			abort();
		if (g.status == GWALK_FAULT && g.pfec != r.pfec)
			abort();
		if (g.status == GWALK_NOT_RAM && g.gpa != r.gpa)
			abort();
		if (g.status == GWALK_OK &&
		    (g.gpa != r.gpa || g.writable != r.writable || g.user != r.user ||
		     g.nx != r.nx || g.global != r.global || g.page_size != r.page_size ||
		     g.pat_index != r.pat_index))
			abort();
		if (memcmp(ram_a, ram_b, sizeof(ram_a)))
			abort();
	}
	return 0;
}
