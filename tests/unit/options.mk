UNIT_TESTS += options
options_SRCS := lib/options.c
