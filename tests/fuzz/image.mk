FUZZ_TARGETS += image
image_FUZZ_SRCS := core/image.c
