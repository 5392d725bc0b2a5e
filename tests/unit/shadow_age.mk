# Shadow page ageing through the reverse map (shadow/age.c) on the simulated machine.
UNIT_TESTS += shadow_age
shadow_age_SRCS := shadow/gwalk.c shadow/account.c shadow/spage.c shadow/shadow.c shadow/reclaim.c shadow/age.c \
                   tests/unit/refmmu.c tests/unit/sim_cpu.c tests/unit/reclaim_sim.c
