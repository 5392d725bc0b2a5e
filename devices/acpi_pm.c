/*
 * The PM1a event and control registers of ACPI fixed hardware (ACPI 6.5
 * 4.8.3.1-4.8.3.2) at the ports the FADT gives: PM1_STS (write 1 to clear),
 * PM1_EN, PM1_CNT. There is no SMI command port, so the platform is always
 * in ACPI mode: SCI_EN reads 1. Writing SLP_EN with SLP_TYP = ACPI_SLP_TYP_S3
 * (1, QEMU's value for \_S3; umbra has no DSDT to name another) puts the
 * platform to sleep in S3: the vCPU stops (vmx/ takes it through
 * devices_enter_sleep()) until a wake event. The only wake source modelled
 * is the RTC alarm with RTC_EN set (4.8.3.1.1); waking sets WAK_STS. Other
 * sleep types are not offered: SLP_EN with them changes nothing. The SCI
 * itself is not raised (no status bit the guest can enable reaches it but
 * RTC, and the test suites poll).
 */
#include "devices/acpi_pm.h"
#include "devices/acpi_tables.h"

#define PM1_STS_RTC (1u << 10)
#define PM1_STS_WAK (1u << 15)
#define PM1_EN_RTC (1u << 10)
#define PM1_CNT_SCI_EN (1u << 0)
#define PM1_CNT_SLP_TYP_SHIFT 10
#define PM1_CNT_SLP_EN (1u << 13)
#define ACPI_SLP_TYP_S3 1
#define PM1_EN_DEFINED 0x0721u    /* TMR, GBL, PWRBTN, SLPBTN, RTC */
#define PM1_CNT_RW 0x1c06u        /* BM_RLD, GBL_RLS, SLP_TYP */

static u16 *byte_reg(struct guest *g, unsigned off)
{
	struct acpi_pm_state *pm = &g->dev->pm;

	return off < 2 ? &pm->sts : off < 4 ? &pm->en : &pm->cnt;
}

bool acpi_pm_io(struct guest *g, u16 port, unsigned size, bool in, u32 *value)
{
	unsigned off = port - ACPI_PM1A_EVT_PORT, shift = 8 * (off & 1);
	struct acpi_pm_state *pm = &g->dev->pm;
	u16 *reg = byte_reg(g, off), v = (u16)((*value & 0xff) << shift);

	(void)size;
	if (in) {
		u16 r = *reg;

		if (reg == &pm->cnt)
			r |= PM1_CNT_SCI_EN;  /* always in ACPI mode; SLP_EN reads 0 */
		*value = (r >> shift) & 0xff;
		return true;
	}
	if (reg == &pm->sts) {
		pm->sts &= (u16)~v;
	} else if (reg == &pm->en) {
		pm->en = (u16)((pm->en & ~(0xff << shift)) | (v & PM1_EN_DEFINED));
	} else {
		pm->cnt = (u16)((pm->cnt & ~(0xff << shift)) | (v & PM1_CNT_RW));
		if ((v & PM1_CNT_SLP_EN) &&
		    ((pm->cnt >> PM1_CNT_SLP_TYP_SHIFT) & 7) == ACPI_SLP_TYP_S3)
			pm->sleep_requested = true;
	}
	return true;
}

void acpi_pm_rtc_alarm(struct guest *g)
{
	struct acpi_pm_state *pm = &g->dev->pm;

	pm->sts |= PM1_STS_RTC;
	if (pm->asleep && (pm->en & PM1_EN_RTC)) {
		pm->asleep = false;
		pm->woke = true;
		pm->sts |= PM1_STS_WAK;
	}
}
