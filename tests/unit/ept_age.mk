UNIT_TESTS += ept_age
ept_age_SRCS := ept/age.c mm/pt.c
