# Flood detection (shadow/flood.c) on a simulated machine.
UNIT_TESTS += flood
flood_SRCS := shadow/gwalk.c shadow/account.c shadow/spage.c shadow/shadow.c shadow/reclaim.c shadow/flood.c \
              tests/unit/refmmu.c tests/unit/sim_cpu.c tests/unit/flood_sim.c

# Benchmark flood=on vs flood=off per write pattern (prints a table; exit
# status says whether the detector still wins and never unshadows a live
# table). Built by `make unit`; run build/unit/bench_flood.
$(BUILD)/unit/bench_flood: tests/unit/bench_flood.c $(flood_SRCS) \
                           $(wildcard shadow/*.h lib/*.h mm/*.h tests/unit/*.h)
	@mkdir -p $(dir $@)
	$(HOSTCC) $(UNIT_CFLAGS) -o $@ $< $(flood_SRCS)

unit: $(BUILD)/unit/bench_flood
