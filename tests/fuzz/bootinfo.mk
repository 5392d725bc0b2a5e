FUZZ_TARGETS += bootinfo
bootinfo_FUZZ_SRCS := boot/multiboot2.c
