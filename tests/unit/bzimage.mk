# Linux boot protocol: bzImage/vmlinux recognition, setup header, zero page (core/bzimage.c).
UNIT_TESTS += bzimage
bzimage_SRCS := core/bzimage.c core/image.c
