/*
 * Benchmark baseline: integer work with almost no memory traffic and no paging changes, so
 * EPT and shadow paging should take the same time (the difference is the cost of simply
 * being a guest). Each pass runs a multiply-rotate hash over a 4 KiB buffer and writes the
 * mixed words back, so every pass depends on the one before. Runs on the boot page tables
 * (2 MiB identity map). The checksum is checked against the known answer for the default
 * n (computed once under QEMU TCG), so a wrong result is a FAIL. Work unit: one pass over
 * the buffer. Default n=24000 passes (about 100M instructions).
 */
#include "bench_common.h"

#define BUF_WORDS 512
#define DEFAULT_PASSES 24000
#define KNOWN_CHECKSUM 0x27d3809ffb18df38ull

static u64 buf[BUF_WORDS] __attribute__((aligned(4096)));

static inline u64 rotl(u64 x, unsigned int r)
{
	return x << r | x >> (64 - r);
}

int main(void)
{
	unsigned long n = bench_param("n", DEFAULT_PASSES);
	u64 rng = 0xa4093822299f31d0ull, h = 0;

	for (unsigned int i = 0; i < BUF_WORDS; i++)
		buf[i] = bench_rng(&rng);

	bench_begin();
	for (unsigned long pass = 0; pass < n; pass++) {
		for (unsigned int i = 0; i < BUF_WORDS; i++) {
			u64 x = buf[i];

			h = rotl((h ^ x) * 0x9e3779b97f4a7c15ull, 29);
			buf[i] = x + h;
		}
		if (pass % 64 == 0)
			bench_mix(h);
	}
	bench_mix(h);
	for (unsigned int i = 0; i < BUF_WORDS; i++)
		bench_mix(buf[i]);

	if (n == DEFAULT_PASSES)
		bench_expect(bench.checksum == KNOWN_CHECKSUM, "known checksum for the default n",
			     bench.checksum, KNOWN_CHECKSUM);
	else
		report_skip("compute: no known checksum for n=%lu", n);
	return bench_end("compute", n);
}
