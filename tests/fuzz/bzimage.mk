FUZZ_TARGETS += bzimage
bzimage_FUZZ_SRCS := core/bzimage.c core/image.c
