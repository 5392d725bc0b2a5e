UNIT_TESTS += bootinfo
bootinfo_SRCS := arch/x86/multiboot2.c
