/*
 * Working-set figures from an exact count of pages per age (age = scans
 * since a page was last seen accessed, saturating at AGE_MAX), shared by
 * the EPT scanner (ept/age.c) and the shadow scanner (shadow/age.c).
 */
#ifndef MM_AGE_COUNT_H
#define MM_AGE_COUNT_H

#include <string.h>
#include "lib/types.h"

#define AGE_MAX 255
#define AGE_BUCKETS 6   /* ages 0, 1, 2-3, 4-7, 8-15, 16+ */

/* Pages used within the last k scans (age < k). */
static inline u64 age_working_set(const u64 count[AGE_MAX + 1], unsigned int k)
{
	u64 n = 0;

	for (unsigned int a = 0; a < k && a <= AGE_MAX; a++)
		n += count[a];
	return n;
}

static inline void age_histogram(const u64 count[AGE_MAX + 1], u64 hist[AGE_BUCKETS])
{
	memset(hist, 0, AGE_BUCKETS * sizeof(hist[0]));
	for (unsigned int a = 0; a <= AGE_MAX; a++) {
		/* Bucket b >= 2 holds ages [2^(b-1), 2^b); the last one the rest. */
		unsigned int b = a < 2 ? a : 32u - (unsigned int)__builtin_clz(a);

		hist[b < AGE_BUCKETS ? b : AGE_BUCKETS - 1] += count[a];
	}
}

#endif
