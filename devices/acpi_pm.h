/* ACPI fixed-hardware PM1a event and control registers and the S3 sleep state (devices/acpi_pm.c). */
#ifndef DEVICES_ACPI_PM_H
#define DEVICES_ACPI_PM_H

#include "guest/guest.h"
#include "devices/types.h"

/* Ports ACPI_PM1A_EVT_PORT..ACPI_PM1A_CNT_PORT+1, one byte at a time. */
bool acpi_pm_io(struct guest *g, u16 port, unsigned size, bool in, u32 *value);
/* The RTC asserted its interrupt (an alarm): RTC_STS, and a wake if enabled. */
void acpi_pm_rtc_alarm(struct guest *g);

#endif
