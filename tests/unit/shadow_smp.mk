# The shadow MMU with two vCPUs of one guest, each on a simulated CPU (TLB, PDE cache).
UNIT_TESTS += shadow_smp
shadow_smp_SRCS := shadow/gwalk.c shadow/account.c shadow/spage.c shadow/shadow.c shadow/reclaim.c \
                   tests/unit/refmmu.c tests/unit/sim_cpu.c
