# INS/OUTS semantics (arch/x86/strio.c), pure logic shared with the hypervisor's I/O exits.
UNIT_TESTS += strio
strio_SRCS := arch/x86/strio.c
