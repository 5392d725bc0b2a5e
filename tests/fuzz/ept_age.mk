FUZZ_TARGETS += ept_age
ept_age_FUZZ_SRCS := ept/age.c mm/pt.c
