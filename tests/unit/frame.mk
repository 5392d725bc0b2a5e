UNIT_TESTS += frame
frame_SRCS := mm/frame.c
