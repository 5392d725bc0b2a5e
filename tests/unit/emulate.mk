# x86 instruction emulator: unit tests and a differential test against the host CPU.
UNIT_TESTS += emulate emulate_diff
emulate_SRCS := arch/x86/emulate.c
emulate_diff_SRCS := arch/x86/emulate.c
