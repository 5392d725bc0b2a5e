/* The MC146818 CMOS RTC and its 128 bytes of CMOS RAM at ports 0x70/0x71 (devices/rtc.c). */
#ifndef DEVICES_RTC_H
#define DEVICES_RTC_H

#include "guest/guest.h"
#include "devices/types.h"

void rtc_reset(struct guest *g);
/* Check the alarm at the updates up to guest TSC now; the guest TSC of the
 * next alarm that would raise IRQ 8 (0: none). */
void rtc_update(struct guest *g, u64 now);
u64 rtc_next_event(struct guest *g);
bool rtc_io(struct guest *g, u16 port, unsigned size, bool in, u32 *value);

#endif
