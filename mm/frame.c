/* Bitmap frame allocator (see frame.h). */
#include <string.h>
#include "mm/frame.h"

#define BITS_PER_WORD 64

static bool frame_in_use(const struct frame_pool *p, u64 f)
{
	return p->bitmap[f / BITS_PER_WORD] & BIT(f % BITS_PER_WORD);
}

static void set_frame(struct frame_pool *p, u64 f, bool used)
{
	if (used)
		p->bitmap[f / BITS_PER_WORD] |= BIT(f % BITS_PER_WORD);
	else
		p->bitmap[f / BITS_PER_WORD] &= ~BIT(f % BITS_PER_WORD);
}

u64 frame_bitmap_bytes(u64 max_addr)
{
	u64 frames = ALIGN_UP(max_addr, PAGE_SIZE) / PAGE_SIZE;

	return ALIGN_UP(frames, BITS_PER_WORD) / 8;
}

void frame_pool_init(struct frame_pool *p, u64 *storage, u64 max_addr)
{
	u64 bytes = frame_bitmap_bytes(max_addr);

	memset(storage, 0xff, bytes);
	*p = (struct frame_pool){
		.bitmap = storage,
		.frame_count = bytes * 8,
	};
}

void frame_pool_add_free(struct frame_pool *p, u64 base, u64 len)
{
	u64 first = ALIGN_UP(base, PAGE_SIZE) / PAGE_SIZE;
	u64 end = ALIGN_DOWN(base + len, PAGE_SIZE) / PAGE_SIZE;

	/* Also stops ALIGN_UP(base) wrapping to frame 0 for a bogus base near 2^64. */
	if (base >= p->frame_count * PAGE_SIZE)
		return;
	if (base + len < base)  /* wrapped: clamp */
		end = p->frame_count;
	if (end > p->frame_count)
		end = p->frame_count;
	if (first == 0)
		first = 1;  /* frame 0 doubles as the failure value */
	for (u64 f = first; f < end; f++) {
		if (frame_in_use(p, f)) {
			set_frame(p, f, false);
			p->free_frames++;
			p->total_frames++;
		}
	}
}

void frame_pool_reserve(struct frame_pool *p, u64 base, u64 len)
{
	u64 first = ALIGN_DOWN(base, PAGE_SIZE) / PAGE_SIZE, end_addr = base + len;
	/* Round up without ALIGN_UP, which wraps to 0 near 2^64; a wrapped range
	 * reserves to the top rather than nothing. */
	u64 end = end_addr < base ? p->frame_count
				  : end_addr / PAGE_SIZE + (end_addr % PAGE_SIZE != 0);

	if (end > p->frame_count)
		end = p->frame_count;
	for (u64 f = first; f < end; f++) {
		if (!frame_in_use(p, f)) {
			set_frame(p, f, true);
			p->free_frames--;
			p->total_frames--;
		}
	}
}

/* Length of the free run starting at frame f, stopping once 'want' is reached. */
static u64 free_run_length(const struct frame_pool *p, u64 f, u64 want)
{
	u64 n = 0;

	while (n < want && f + n < p->frame_count && !frame_in_use(p, f + n))
		n++;
	return n;
}

/* One frame: the first free one from the hint, found a word at a time. */
static u64 alloc_one(struct frame_pool *p)
{
	u64 words = p->frame_count / BITS_PER_WORD;

	for (u64 pass = 0; pass < 2; pass++) {
		for (u64 w = pass ? 0 : p->search_hint; w < words; w++) {
			/* Frame 0 doubles as the failure value: never handed out. */
			u64 free = ~p->bitmap[w] & (w ? ~0ull : ~1ull), f;

			if (!free)
				continue;
			f = w * BITS_PER_WORD + (u64)__builtin_ctzll(free);
			set_frame(p, f, true);
			p->free_frames--;
			p->search_hint = (f + 1) / BITS_PER_WORD;
			return f * PAGE_SIZE;
		}
	}
	return 0;
}

u64 frame_alloc_run(struct frame_pool *p, u64 count, u64 align)
{
	u64 step = align / PAGE_SIZE, start_word;

	if (count == 0 || step == 0 || (step & (step - 1)) || count > p->free_frames)
		return 0;
	if (count == 1 && step == 1)
		return alloc_one(p);	/* the same frame the search below would find */
	/* Single frames start at the hint so repeated allocation is ~O(1). */
	start_word = count == 1 ? p->search_hint : 0;
	for (u64 pass = 0; pass < 2; pass++) {
		u64 f = ALIGN_UP(start_word * BITS_PER_WORD, step);

		while (f + count <= p->frame_count) {
			u64 run;

			if (p->bitmap[f / BITS_PER_WORD] == ~0ull && step <= BITS_PER_WORD &&
			    f % BITS_PER_WORD == 0) {
				f += BITS_PER_WORD;  /* skip a full word quickly */
				continue;
			}
			run = free_run_length(p, f, count);
			if (run == count && f != 0) {
				for (u64 i = 0; i < count; i++)
					set_frame(p, f + i, true);
				p->free_frames -= count;
				p->search_hint = (f + count) / BITS_PER_WORD;
				return f * PAGE_SIZE;
			}
			f = ALIGN_UP(f + run + 1, step);
		}
		start_word = 0;
	}
	return 0;
}

u64 frame_alloc(struct frame_pool *p)
{
	return frame_alloc_run(p, 1, PAGE_SIZE);
}

void frame_free_run(struct frame_pool *p, u64 addr, u64 count)
{
	u64 first = addr / PAGE_SIZE;

	for (u64 f = first; f < first + count && f < p->frame_count; f++) {
		if (frame_in_use(p, f)) {
			set_frame(p, f, false);
			p->free_frames++;
		}
	}
	if (first / BITS_PER_WORD < p->search_hint)
		p->search_hint = first / BITS_PER_WORD;
}
