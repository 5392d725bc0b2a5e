/*
 * The MC146818 CMOS real-time clock (the PC's, ports 0x70 index / 0x71
 * data; bit 7 of the index is the NMI mask, kept but without effect).
 * Its time is a fixed epoch, RTC_EPOCH below, plus the guest's own clock
 * (guest TSC), so every run of a guest reads the same dates, and a guest
 * that sets the clock moves that offset. The time is computed when read;
 * the once-a-second update happens at each whole second of the guest's
 * clock, and register A's UIP reads 1 for the 244 us before it (MC146818
 * data sheet: the time is stable while UIP=1 and for 244 us after UIP=0
 * reads). The alarm (registers 1, 3, 5, 0xc0-0xff = don't care) is checked
 * at every update: AF in register C, and with AIE set IRQF and an IRQ 8
 * edge, which is also the ACPI RTC wake event (devices/acpi_pm.c). The
 * periodic and update-ended interrupts are not modelled (PF, UF read 0).
 * Registers B's DM (binary/BCD), 24/12 and SET bits are. Other bytes are
 * plain CMOS RAM, zero at reset.
 */
#include "devices/rtc.h"
#include "devices/acpi_pm.h"
#include "devices/pic.h"
#include "arch/x86/machine.h"

#define RTC_SECONDS 0x00
#define RTC_SECONDS_ALARM 0x01
#define RTC_MINUTES 0x02
#define RTC_MINUTES_ALARM 0x03
#define RTC_HOURS 0x04
#define RTC_HOURS_ALARM 0x05
#define RTC_WEEKDAY 0x06
#define RTC_DAY 0x07
#define RTC_MONTH 0x08
#define RTC_YEAR 0x09
#define RTC_REG_A 0x0a
#define RTC_REG_B 0x0b
#define RTC_REG_C 0x0c
#define RTC_REG_D 0x0d
#define RTC_CENTURY 0x32      /* where the PC keeps the century (ACPI FADT default) */
#define REG_A_DEFAULT 0x26    /* 32.768 kHz time base, 1024 Hz rate, as BIOSes set it */
#define REG_B_24H 0x02
#define REG_B_BINARY 0x04
#define REG_B_SET 0x80
#define REG_B_AIE 0x20
#define REG_A_UIP 0x80
#define REG_C_IRQF 0x80
#define REG_C_AF 0x20
#define ALARM_DONT_CARE 0xc0
#define RTC_IRQ 8
#define UIP_US 244            /* UIP is set this long before the update */
#define REG_D_VRT 0x80        /* RAM and time valid */
#define HOUR_PM 0x80
/* 2024-01-01 00:00:00 UTC as seconds since 1970-01-01. */
#define RTC_EPOCH 1704067200ll

struct rtc_time {
	int sec, min, hour, wday, mday, mon, year;
};

/* Days since 1970-01-01 of a proleptic Gregorian date (Howard Hinnant's algorithm). */
static s64 days_from_civil(s64 y, unsigned m, unsigned d)
{
	y -= m <= 2;
	s64 era = (y >= 0 ? y : y - 399) / 400;
	unsigned yoe = (unsigned)(y - era * 400);
	unsigned doy = (153 * (m + (m > 2 ? -3 : 9)) + 2) / 5 + d - 1;
	unsigned doe = yoe * 365 + yoe / 4 - yoe / 100 + doy;

	return era * 146097 + (s64)doe - 719468;
}

static void civil_from_days(s64 z, struct rtc_time *t)
{
	z += 719468;
	s64 era = (z >= 0 ? z : z - 146096) / 146097;
	unsigned doe = (unsigned)(z - era * 146097);
	unsigned yoe = (doe - doe / 1460 + doe / 36524 - doe / 146096) / 365;
	unsigned doy = doe - (365 * yoe + yoe / 4 - yoe / 100);
	unsigned mp = (5 * doy + 2) / 153;

	t->mday = (int)(doy - (153 * mp + 2) / 5 + 1);
	t->mon = (int)(mp < 10 ? mp + 3 : mp - 9);
	t->year = (int)((s64)yoe + era * 400 + (t->mon <= 2));
}

static u64 tsc_hz(void)
{
	return machine_timing_khz() * 1000;
}

static s64 guest_seconds(struct guest *g)
{
	return (s64)(guest_tsc(g) / tsc_hz());
}

/* The calendar time at guest clock second s. */
static void rtc_time_at(struct guest *g, s64 s, struct rtc_time *t)
{
	s64 now = RTC_EPOCH + g->dev->rtc.offset_s + s;
	s64 days = now / 86400, rem = now % 86400;

	civil_from_days(days, t);
	t->hour = (int)(rem / 3600);
	t->min = (int)(rem / 60 % 60);
	t->sec = (int)(rem % 60);
	t->wday = (int)((days + 4) % 7) + 1;  /* 1970-01-01 was a Thursday; Sunday is 1 */
}

static void rtc_now(struct guest *g, struct rtc_time *t)
{
	rtc_time_at(g, guest_seconds(g), t);
}

static u8 encode(const struct rtc_state *r, int v)
{
	return (r->ram[RTC_REG_B] & REG_B_BINARY) ? (u8)v : (u8)((v / 10) << 4 | v % 10);
}

static int decode(const struct rtc_state *r, u8 v)
{
	return (r->ram[RTC_REG_B] & REG_B_BINARY) ? v : (v >> 4) * 10 + (v & 0xf);
}

static u8 read_hour(const struct rtc_state *r, int hour)
{
	if (r->ram[RTC_REG_B] & REG_B_24H)
		return encode(r, hour);
	/* 12-hour mode: 12, 1..11 with bit 7 for PM. */
	return (u8)(encode(r, hour % 12 ? hour % 12 : 12) | (hour >= 12 ? HOUR_PM : 0));
}

static int write_hour(const struct rtc_state *r, u8 v)
{
	int h;

	if (r->ram[RTC_REG_B] & REG_B_24H)
		return decode(r, v);
	h = decode(r, v & 0x7f) % 12;
	return v & HOUR_PM ? h + 12 : h;
}

static bool alarm_field_matches(u8 alarm, u8 now)
{
	return (alarm & ALARM_DONT_CARE) == ALARM_DONT_CARE || alarm == now;
}

/* The first guest clock second after `after` whose update matches the
 * alarm, -1 if none within a day (an alarm value no time has). A mismatched
 * hour or minute skips to the next hour or minute. */
static s64 next_alarm_second(struct guest *g, s64 after)
{
	const struct rtc_state *r = &g->dev->rtc;
	s64 s = after + 1, wall;

	for (int steps = 0; steps < 24 + 60 + 60 + 3; steps++) {
		struct rtc_time t;

		rtc_time_at(g, s, &t);
		wall = RTC_EPOCH + r->offset_s + s;
		if (!alarm_field_matches(r->ram[RTC_HOURS_ALARM], read_hour(r, t.hour)))
			s += 3600 - wall % 3600;
		else if (!alarm_field_matches(r->ram[RTC_MINUTES_ALARM], encode(r, t.min)))
			s += 60 - wall % 60;
		else if (!alarm_field_matches(r->ram[RTC_SECONDS_ALARM], encode(r, t.sec)))
			s += 1;
		else
			return s;
	}
	return -1;
}

/* IRQF = AF & AIE (the other sources are not modelled); its rising edge is
 * IRQ 8 and the ACPI RTC event. */
static void update_irqf(struct guest *g)
{
	struct rtc_state *r = &g->dev->rtc;

	if ((r->ram[RTC_REG_B] & REG_B_AIE) && (r->ram[RTC_REG_C] & REG_C_AF) &&
	    !(r->ram[RTC_REG_C] & REG_C_IRQF)) {
		r->ram[RTC_REG_C] |= REG_C_IRQF;
		pic_raise_irq(g, RTC_IRQ);
		acpi_pm_rtc_alarm(g);
	}
}

void rtc_update(struct guest *g, u64 now)
{
	struct rtc_state *r = &g->dev->rtc;
	s64 sec = (s64)(now / tsc_hz()), due;

	if (sec <= r->alarm_seen_s)
		return;
	due = (r->ram[RTC_REG_B] & REG_B_SET) ? -1 : next_alarm_second(g, r->alarm_seen_s);
	r->alarm_seen_s = sec;
	if (due < 0 || due > sec)
		return;
	r->ram[RTC_REG_C] |= REG_C_AF;
	update_irqf(g);
}

u64 rtc_next_event(struct guest *g)
{
	const struct rtc_state *r = &g->dev->rtc;
	s64 due;

	/* With IRQF up, another alarm changes nothing until register C is read. */
	if (!(r->ram[RTC_REG_B] & REG_B_AIE) || (r->ram[RTC_REG_B] & REG_B_SET) ||
	    (r->ram[RTC_REG_C] & REG_C_IRQF))
		return 0;
	due = next_alarm_second(g, r->alarm_seen_s);
	return due < 0 ? 0 : (u64)due * tsc_hz();
}

static u8 reg_a(struct guest *g)
{
	const struct rtc_state *r = &g->dev->rtc;
	u64 hz = tsc_hz(), into = guest_tsc(g) % hz;
	bool uip = !(r->ram[RTC_REG_B] & REG_B_SET) && into >= hz - hz / 1000000 * UIP_US;

	return (u8)(r->ram[RTC_REG_A] | (uip ? REG_A_UIP : 0));
}

static u8 rtc_read(struct guest *g, u8 index)
{
	struct rtc_state *r = &g->dev->rtc;
	struct rtc_time t;

	rtc_now(g, &t);
	switch (index) {
	case RTC_SECONDS: return encode(r, t.sec);
	case RTC_MINUTES: return encode(r, t.min);
	case RTC_HOURS: return read_hour(r, t.hour);
	case RTC_WEEKDAY: return encode(r, t.wday);
	case RTC_DAY: return encode(r, t.mday);
	case RTC_MONTH: return encode(r, t.mon);
	case RTC_YEAR: return encode(r, t.year % 100);
	case RTC_CENTURY: return encode(r, t.year / 100);
	case RTC_REG_A: return reg_a(g);
	case RTC_REG_C: {  /* reading clears the flags (and lowers IRQ 8) */
		u8 c = r->ram[RTC_REG_C];

		r->ram[RTC_REG_C] = 0;
		return c;
	}
	case RTC_REG_D: return REG_D_VRT;
	default: return r->ram[index];
	}
}

/* Setting one field of the time moves the offset from the guest's clock. */
static void rtc_set_field(struct guest *g, u8 index, u8 v)
{
	struct rtc_state *r = &g->dev->rtc;
	struct rtc_time t;
	s64 when;

	rtc_now(g, &t);
	switch (index) {
	case RTC_SECONDS: t.sec = decode(r, v); break;
	case RTC_MINUTES: t.min = decode(r, v); break;
	case RTC_HOURS: t.hour = write_hour(r, v); break;
	case RTC_DAY: t.mday = decode(r, v); break;
	case RTC_MONTH: t.mon = decode(r, v); break;
	case RTC_YEAR: t.year = t.year / 100 * 100 + decode(r, v) % 100; break;
	case RTC_CENTURY: t.year = decode(r, v) * 100 + t.year % 100; break;
	default: return;  /* the weekday follows from the date */
	}
	if (t.mon < 1 || t.mon > 12 || t.mday < 1 || t.mday > 31)
		return;  /* a field out of range: the chip's time would be garbage; keep ours */
	when = days_from_civil(t.year, (unsigned)t.mon, (unsigned)t.mday) * 86400 +
	       t.hour * 3600 + t.min * 60 + t.sec;
	r->offset_s = when - RTC_EPOCH - guest_seconds(g);
}

static void rtc_write(struct guest *g, u8 index, u8 v)
{
	struct rtc_state *r = &g->dev->rtc;

	switch (index) {
	case RTC_SECONDS: case RTC_MINUTES: case RTC_HOURS: case RTC_WEEKDAY:
	case RTC_DAY: case RTC_MONTH: case RTC_YEAR: case RTC_CENTURY:
		rtc_set_field(g, index, v);
		break;
	case RTC_REG_A:
		r->ram[index] = v & 0x7f;  /* UIP is read-only */
		break;
	case RTC_REG_B:
		r->ram[index] = v;
		update_irqf(g);
		break;
	case RTC_REG_C: case RTC_REG_D:
		break;  /* read-only */
	default:
		r->ram[index] = v;
		break;
	}
}

void rtc_reset(struct guest *g)
{
	struct rtc_state *r = &g->dev->rtc;

	r->ram[RTC_REG_A] = REG_A_DEFAULT;
	r->ram[RTC_REG_B] = REG_B_24H;  /* BCD, 24-hour: what PC firmware leaves */
}

bool rtc_io(struct guest *g, u16 port, unsigned size, bool in, u32 *value)
{
	struct rtc_state *r = &g->dev->rtc;

	(void)size;
	if (port == 0x70) {
		if (in)
			*value = 0xff;  /* the index register is write-only */
		else
			r->index = (u8)*value;
		return true;
	}
	if (in)
		*value = rtc_read(g, r->index & 0x7f);
	else
		rtc_write(g, r->index & 0x7f, (u8)*value);
	return true;
}
