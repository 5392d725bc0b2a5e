# The simulated CPU (TLB and PDE cache) that the reclaim, flood and ageing tests run on.
UNIT_TESTS += sim_cpu
sim_cpu_SRCS := tests/unit/refmmu.c tests/unit/sim_cpu.c
