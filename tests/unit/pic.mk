# The 8259 PIC model (devices/pic.c) linked with guest/ only: device models need no VMX code.
UNIT_TESTS += pic
pic_SRCS := devices/pic.c devices/pc_testdev.c guest/guest.c
