UNIT_TESTS += bootinfo
bootinfo_SRCS := boot/multiboot2.c
