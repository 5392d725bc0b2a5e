/*
 * Memory test over all RAM the multiboot info reports above 1 MiB, outside this kernel
 * image and the multiboot structures: address-dependent patterns written everywhere first
 * and verified afterwards, so an address that aliases another (wrong EPT/shadow mapping)
 * fails. 64-bit, so the identity map reaches all of RAM whatever its size.
 */
#include "libguest.h"

static const u64 pass_xors[] = { 0, ~0ull, 0x5555555555555555ull };

struct memtest_pass {
	u64 xor;
	u64 bytes, mismatches;
};

static void fill_range(u64 start, u64 end, void *ctx)
{
	struct memtest_pass *p = ctx;

	p->bytes += pattern_fill(start, end, p->xor);
}

static void check_range(u64 start, u64 end, void *ctx)
{
	struct memtest_pass *p = ctx;

	p->mismatches += pattern_check(start, end, p->xor);
}

static void print_range(u64 start, u64 end, void *ctx)
{
	(void)ctx;
	printf("  testing [%#llx, %#llx) %llu KiB\n", start, end, (end - start) >> 10);
}

int main(void)
{
	u64 tested = 0, end = ram_end();

	if (!end) {
		report(false, "multiboot info gives the RAM size");
		return report_summary();
	}
	for_each_free_ram(MIB, end, print_range, NULL);
	for (unsigned int i = 0; i < ARRAY_SIZE(pass_xors); i++) {
		struct memtest_pass p = { .xor = pass_xors[i] };

		for_each_free_ram(MIB, end, fill_range, &p);
		for_each_free_ram(MIB, end, check_range, &p);
		report(p.mismatches == 0, "pattern address ^ %#llx over %llu KiB: %llu mismatches",
		       p.xor, p.bytes >> 10, p.mismatches);
		tested = p.bytes;
	}
	/* Guards against a broken range walk that quietly tests (almost) nothing. */
	u64 available = end - image_end();

	report(tested >= available - (available >> 2),
	       "tested %llu of the %llu KiB above the image", tested >> 10, available >> 10);
	printf("memtest: %llu MiB tested\n", tested >> 20);
	return report_summary();
}
