FUZZ_TARGETS += image
image_FUZZ_SRCS := vmx/image.c
