/* Per-guest "stats NAME GROUP key=value" lines at the end of a run (core/stats.c). */
#ifndef CORE_STATS_H
#define CORE_STATS_H

#include "guest/guest.h"

void stats_print(struct guest *g);

#endif
