UNIT_TESTS += mtrr
mtrr_SRCS := mm/mtrr.c
