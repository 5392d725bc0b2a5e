# Shadow page accounting and reclaim (shadow/reclaim.c) on a simulated machine.
UNIT_TESTS += reclaim
reclaim_SRCS := shadow/gwalk.c shadow/account.c shadow/spage.c shadow/shadow.c shadow/reclaim.c \
                tests/unit/refmmu.c tests/unit/sim_cpu.c tests/unit/reclaim_sim.c

# Benchmark CLOCK vs FIFO (prints a table; exit status says whether CLOCK
# still wins clearly). Built by `make unit`; run build/unit/bench_reclaim.
$(BUILD)/unit/bench_reclaim: tests/unit/bench_reclaim.c $(reclaim_SRCS) \
                             $(wildcard shadow/*.h lib/*.h mm/*.h tests/unit/*.h)
	@mkdir -p $(dir $@)
	$(HOSTCC) $(UNIT_CFLAGS) -o $@ $< $(reclaim_SRCS)

unit: $(BUILD)/unit/bench_reclaim

# Global reclaim with many guests on several CPUs: lock acquisitions per reclaim
# and per count query (prints a table; exit status says whether the claims hold).
$(BUILD)/unit/bench_smp_reclaim: tests/unit/bench_smp_reclaim.c $(reclaim_SRCS) \
                                 $(wildcard shadow/*.h lib/*.h mm/*.h tests/unit/*.h)
	@mkdir -p $(dir $@)
	$(HOSTCC) $(UNIT_CFLAGS) -DSIM_MAX_GUESTS=16 -o $@ $< $(reclaim_SRCS)

unit: $(BUILD)/unit/bench_smp_reclaim
