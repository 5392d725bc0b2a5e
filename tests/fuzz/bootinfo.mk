FUZZ_TARGETS += bootinfo
bootinfo_FUZZ_SRCS := arch/x86/multiboot2.c
