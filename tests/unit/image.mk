UNIT_TESTS += image
image_SRCS := core/image.c
