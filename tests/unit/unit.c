/* Runner for tests/unit/unit.h. */
#include "unit.h"

#define MAX_TESTS 1024

static struct unit_test tests[MAX_TESTS];
static int test_count;
static int current_failed;

void unit_register(const char *name, void (*fn)(void))
{
	if (test_count == MAX_TESTS) {
		fprintf(stderr, "unit: too many tests\n");
		exit(2);
	}
	tests[test_count].name = name;
	tests[test_count].fn = fn;
	test_count++;
}

void unit_fail(const char *file, int line, const char *expr, const char *detail)
{
	/* Keep going after a failed check: later checks often say more. Cap noise. */
	if (current_failed < 10)
		fprintf(stderr, "  %s:%d: CHECK failed: %s%s%s\n", file, line, expr,
			detail ? ": " : "", detail ? detail : "");
	current_failed++;
}

int unit_main(void)
{
	int passed = 0, failed = 0;

	for (int i = 0; i < test_count; i++) {
		current_failed = 0;
		tests[i].fn();
		if (current_failed) {
			printf("FAIL %s\n", tests[i].name);
			failed++;
		} else {
			printf("PASS %s\n", tests[i].name);
			passed++;
		}
		fflush(stdout);
	}
	printf("%d passed, %d failed\n", passed, failed);
	return failed ? 1 : 0;
}
