# x86 instruction emulator: differential test against the host CPU.
UNIT_TESTS += emulate_diff
emulate_diff_SRCS := arch/x86/emulate.c
