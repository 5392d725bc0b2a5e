UNIT_TESTS += image
image_SRCS := vmx/image.c
