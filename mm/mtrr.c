/* MTRR memory-type lookup (see mtrr.h; SDM Vol. 3A 13.11.4 and 13.11.4.1). */
#include "mm/mtrr.h"

#define PHYSMASK_VALID BIT(11)

static u8 fixed_type(const struct mtrr_state *s, u64 addr)
{
	if (addr < 0x80000)
		return s->fixed[addr >> 16];                         /* 64 KiB ranges */
	if (addr < 0xc0000)
		return s->fixed[8 + ((addr - 0x80000) >> 14)];       /* 16 KiB ranges */
	return s->fixed[24 + ((addr - 0xc0000) >> 12)];              /* 4 KiB ranges */
}

u8 mtrr_type(const struct mtrr_state *s, u64 addr)
{
	u64 phys_mask = BIT(s->maxphyaddr) - 1;
	bool matched = false;
	u8 type = 0;

	if (!s->enabled)
		return MT_UC;
	if (s->fixed_enabled && addr < 0x100000)
		return fixed_type(s, addr);
	for (int i = 0; i < s->variable_count; i++) {
		u64 mask = s->variable[i].mask & phys_mask & ~0xfffull;
		u8 t = (u8)s->variable[i].base;

		if (!(s->variable[i].mask & PHYSMASK_VALID) ||
		    (addr & mask) != (s->variable[i].base & mask & ~0xfffull))
			continue;
		/* Overlaps: UC wins; WT wins over WB; other mixes are undefined
		 * and we keep the first. */
		if (!matched || t == MT_UC || (t == MT_WT && type == MT_WB))
			type = t;
		matched = true;
	}
	return matched ? type : s->default_type;
}

u8 mtrr_range_type(const struct mtrr_state *s, u64 start, u64 len)
{
	u8 first = mtrr_type(s, start);

	/* Variable ranges are at least 4 KiB and aligned, fixed ones too. */
	for (u64 off = PAGE_SIZE; off < len; off += PAGE_SIZE)
		if (mtrr_type(s, start + off) != first)
			return MT_MIXED;
	return first;
}
