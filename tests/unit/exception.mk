# Exception classes and how two combine (arch/x86/exception.c, SDM Tables 6-4 and 6-5).
UNIT_TESTS += exception
exception_SRCS := arch/x86/exception.c
