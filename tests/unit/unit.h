/*
 * Minimal host unit-test harness. Each tests/unit/test_*.c is one program:
 *
 *   #include "unit.h"
 *   TEST(walk_4level_basic) { CHECK_EQ(1, 1); }
 *   ...
 *   int main(void) { return unit_main(); }   -- or use UNIT_MAIN()
 *
 * Tests register themselves through a constructor; unit_main() runs them in
 * order and prints one "PASS name"/"FAIL name" line each, then
 * "N passed, N failed". Exit status is non-zero if any check failed.
 */
#ifndef TESTS_UNIT_UNIT_H
#define TESTS_UNIT_UNIT_H

#include <stdio.h>
#include <stdlib.h>
#include <inttypes.h>

struct unit_test {
	const char *name;
	void (*fn)(void);
};

void unit_register(const char *name, void (*fn)(void));
void unit_fail(const char *file, int line, const char *expr, const char *detail);
int unit_main(void);

#define TEST(name)                                                          \
	static void test_##name(void);                                      \
	__attribute__((constructor)) static void register_##name(void)      \
	{                                                                   \
		unit_register(#name, test_##name);                          \
	}                                                                   \
	static void test_##name(void)

#define CHECK(cond)                                                         \
	do {                                                                \
		if (!(cond))                                                \
			unit_fail(__FILE__, __LINE__, #cond, NULL);         \
	} while (0)

#define CHECK_EQ(a, b)                                                      \
	do {                                                                \
		unsigned long long va_ = (unsigned long long)(a);           \
		unsigned long long vb_ = (unsigned long long)(b);           \
		if (va_ != vb_) {                                           \
			char d_[96];                                        \
			snprintf(d_, sizeof(d_), "0x%llx != 0x%llx", va_, vb_); \
			unit_fail(__FILE__, __LINE__, #a " == " #b, d_);    \
		}                                                           \
	} while (0)

#define UNIT_MAIN() \
	int main(void) { return unit_main(); }

#endif
