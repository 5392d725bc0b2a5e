UNIT_TESTS += gwalk
gwalk_SRCS := shadow/gwalk.c tests/unit/refmmu.c
