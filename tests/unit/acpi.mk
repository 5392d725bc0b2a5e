# ACPI table lookup and MADT parsing (arch/x86/acpi.c): which CPUs umbra starts.
UNIT_TESTS += acpi
acpi_SRCS := arch/x86/acpi.c
