# EPT construction (ept/ept.c) over simulated guest RAM, and ageing's splits over it.
UNIT_TESTS += ept
ept_SRCS := ept/ept.c ept/age.c mm/pt.c mm/mtrr.c
