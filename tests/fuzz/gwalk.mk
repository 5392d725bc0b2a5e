FUZZ_TARGETS += gwalk
gwalk_FUZZ_SRCS := shadow/gwalk.c tests/unit/refmmu.c
