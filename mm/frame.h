/*
 * Physical frame allocator: a bitmap over all frames below the highest
 * usable address, with O(1) counters. Pure logic (host unit-tested): the
 * caller supplies the bitmap storage and says which ranges are free.
 */
#ifndef MM_FRAME_H
#define MM_FRAME_H

#include "lib/types.h"

struct frame_pool {
	u64 *bitmap;        /* bit set = frame in use or not RAM */
	u64 frame_count;    /* frames covered by the bitmap */
	u64 free_frames;    /* O(1) counters */
	u64 total_frames;   /* frames ever marked free (usable RAM) */
	u64 search_hint;    /* word index where the last single allocation ended */
};

/* Bytes of bitmap needed to cover physical addresses below max_addr. */
u64 frame_bitmap_bytes(u64 max_addr);
/* Start with every frame unusable; storage must hold frame_bitmap_bytes(). */
void frame_pool_init(struct frame_pool *p, u64 *storage, u64 max_addr);
/* Mark whole frames inside [base, base+len) free (RAM from the memory map). */
void frame_pool_add_free(struct frame_pool *p, u64 base, u64 len);
/* Mark frames overlapping [base, base+len) used (image, modules, bitmap). */
void frame_pool_reserve(struct frame_pool *p, u64 base, u64 len);

/* Allocate 'count' contiguous frames aligned to 'align' bytes (a power of two
 * >= 4096). Returns the physical address, or 0 when no such run exists
 * (frame 0 is never handed out). */
u64 frame_alloc_run(struct frame_pool *p, u64 count, u64 align);
u64 frame_alloc(struct frame_pool *p);
void frame_free_run(struct frame_pool *p, u64 addr, u64 count);

static inline u64 frame_pool_free(const struct frame_pool *p) { return p->free_frames; }
static inline u64 frame_pool_used(const struct frame_pool *p)
{
	return p->total_frames - p->free_frames;
}

/* The hypervisor's pool (mm/mm.c), with physical = virtual addresses. */

#endif
