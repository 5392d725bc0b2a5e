/*
 * The MC146818 CMOS real-time clock (the PC's, ports 0x70 index / 0x71
 * data; bit 7 of the index is the NMI mask, kept but without effect).
 * Its time is a fixed epoch, RTC_EPOCH below, plus the guest's own clock
 * (guest TSC), so every run of a guest reads the same dates, and a guest
 * that sets the clock moves that offset. The time is computed when read,
 * so an update is never in progress (register A's UIP stays 0) and the
 * alarm, periodic and update-ended interrupts (IRQ 8) are not modelled:
 * register C reads 0. Registers B's DM (binary/BCD) and 24/12 bits are.
 * Other bytes are plain CMOS RAM, zero at reset.
 */
#include "devices/rtc.h"
#include "arch/x86/machine.h"

#define RTC_SECONDS 0x00
#define RTC_MINUTES 0x02
#define RTC_HOURS 0x04
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

static s64 guest_seconds(struct guest *g)
{
	return (s64)(guest_tsc(g) / (machine_timing_khz() * 1000));
}

static void rtc_now(struct guest *g, struct rtc_time *t)
{
	s64 now = RTC_EPOCH + g->dev->rtc.offset_s + guest_seconds(g);
	s64 days = now / 86400, rem = now % 86400;

	civil_from_days(days, t);
	t->hour = (int)(rem / 3600);
	t->min = (int)(rem / 60 % 60);
	t->sec = (int)(rem % 60);
	t->wday = (int)((days + 4) % 7) + 1;  /* 1970-01-01 was a Thursday; Sunday is 1 */
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
	case RTC_REG_C: return 0;  /* no interrupt flags: none are raised */
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
