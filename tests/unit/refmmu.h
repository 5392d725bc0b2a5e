/*
 * Reference software MMU for tests: a deliberately plain, mode-by-mode
 * reading of SDM Vol. 3A chapter 4, written separately from shadow/gwalk.c
 * so the two can check each other. Slow and single-threaded by design.
 */
#ifndef TESTS_UNIT_REFMMU_H
#define TESTS_UNIT_REFMMU_H

#include "shadow/gwalk.h"

struct ref_result {
	enum gwalk_status status;
	u32 pfec;
	u64 gpa;
	bool writable, user, nx, global;
	u64 page_size;
	u8 pat_index;
};

/*
 * Same contract as gwalk(): A on every entry above the leaf that the walk
 * goes through, in walk order; A on the leaf (and D on a write) only when
 * the access is permitted; nothing on the entry that stops the walk.
 */
enum gwalk_status ref_translate(const struct gwalk_ctx *ctx, struct guest_mem *mem, u64 gva,
				u32 access, struct ref_result *out);

/*
 * The SDM 4.6 access check for combined rights w, u, nx (also used by the
 * simulated CPU on cached translations), and the #PF error code of a fault.
 */
bool ref_allowed(const struct gwalk_ctx *ctx, u32 access, bool w, bool u, bool nx);
u32 ref_pfec(const struct gwalk_ctx *ctx, u32 access, bool present, bool rsvd);

/*
 * Test guest RAM: npages pages at bytes; frames at or above npages are not
 * RAM. Shared by the walker, shadow MMU and fuzz tests.
 */
struct ref_ram {
	struct guest_mem mem;
	u8 *bytes;
	u64 npages;
};

void ref_ram_init(struct ref_ram *ram, u8 *bytes, u64 npages);

/* Small deterministic PRNG (xorshift64*) for randomized tests. */
u64 ref_rand(u64 *state);

/*
 * A random paging entry biased toward useful walks: usually present,
 * pointing into the first ram_pages frames, random rights/A/D/PS/G/cache
 * bits, sometimes NX, sometimes a reserved or out-of-RAM address bit.
 */
u64 ref_random_entry(u64 *rng, u64 ram_pages);

#endif
