# EPT construction (ept/ept.c) over simulated guest RAM.
UNIT_TESTS += ept
ept_SRCS := ept/ept.c mm/pt.c mm/mtrr.c
