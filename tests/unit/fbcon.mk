UNIT_TESTS += fbcon
fbcon_SRCS := arch/x86/fbcon.c arch/x86/font.c
