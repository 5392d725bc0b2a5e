# x86 instruction emulator: random bytes and registers over a small fake memory.
FUZZ_TARGETS += emulate
emulate_FUZZ_SRCS := arch/x86/emulate.c
