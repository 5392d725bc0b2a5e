/*
 * Memory types from the MTRRs (SDM Vol. 3A 13.11): what the host's firmware
 * says each physical range is (write-back RAM, uncached devices...), so
 * that the EPT gives guest memory the same type. Pure logic: the caller
 * reads the MSRs into struct mtrr_state (host unit-tested).
 */
#ifndef MM_MTRR_H
#define MM_MTRR_H

#include "lib/types.h"

enum mem_type_code {
	MT_UC = 0, MT_WC = 1, MT_WT = 4, MT_WP = 5, MT_WB = 6,
	MT_MIXED = 0xff,  /* mtrr_range_type(): the range is not uniform */
};

#define MTRR_MAX_VARIABLE 16
#define MTRR_FIXED_RANGES 88  /* 8 x 64 KiB, 16 x 16 KiB, 64 x 4 KiB below 1 MiB */

struct mtrr_state {
	bool enabled;          /* IA32_MTRR_DEF_TYPE.E */
	bool fixed_enabled;    /* IA32_MTRR_DEF_TYPE.FE (and the CPU has them) */
	u8 default_type;
	u8 fixed[MTRR_FIXED_RANGES];
	int variable_count;
	struct {
		u64 base, mask;    /* IA32_MTRR_PHYSBASEn / PHYSMASKn as read */
	} variable[MTRR_MAX_VARIABLE];
	u8 maxphyaddr;
};

/* Type of one physical address. */
u8 mtrr_type(const struct mtrr_state *s, u64 addr);
/* Type of [start, start+len), or MT_MIXED; len a multiple of 4 KiB. */
u8 mtrr_range_type(const struct mtrr_state *s, u64 start, u64 len);

#endif
