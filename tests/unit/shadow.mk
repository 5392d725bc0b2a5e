UNIT_TESTS += shadow
shadow_SRCS := shadow/gwalk.c shadow/account.c shadow/spage.c shadow/shadow.c shadow/reclaim.c tests/unit/refmmu.c
