UNIT_TESTS += pt
pt_SRCS := mm/pt.c
