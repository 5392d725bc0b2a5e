/*
 * Address-dependent RAM patterns: word at address A holds A ^ xor, so a write that lands at
 * the wrong address, or memory shared with someone else, shows up as a mismatch. Plus a
 * check that memory is still all zero.
 */
#include "internal.h"

/* Mismatches printed in full before pattern_check() only counts. */
#define REPORTED_MISMATCHES 8

u64 pattern_fill(u64 start, u64 end, u64 xor)
{
	for (u64 a = start; a < end; a += 8)
		*(volatile u64 *)(unsigned long)a = a ^ xor;
	return end - start;
}

u64 pattern_check(u64 start, u64 end, u64 xor)
{
	u64 bad = 0;

	for (u64 a = start; a < end; a += 8) {
		u64 v = *(volatile u64 *)(unsigned long)a;

		if (v == (a ^ xor))
			continue;
		if (bad++ < REPORTED_MISMATCHES)
			printf("  mismatch at %#llx: read %#llx, expected %#llx\n", a, v, a ^ xor);
	}
	return bad;
}

u64 zero_check(u64 start, u64 end)
{
	u64 bad = 0;

	for (u64 a = start; a < end; a += 8) {
		u64 v = *(volatile u64 *)(unsigned long)a;

		if (v && bad++ < REPORTED_MISMATCHES)
			printf("  nonzero at %#llx: %#llx\n", a, v);
	}
	return bad;
}
