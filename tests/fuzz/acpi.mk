FUZZ_TARGETS += acpi
acpi_FUZZ_SRCS := arch/x86/acpi.c
