/* The hypervisor's own command-line options (documented in README.md). */
#ifndef LIB_CONFIG_H
#define LIB_CONFIG_H

#include "lib/types.h"

enum exit_method { EXIT_AUTO, EXIT_QEMU, EXIT_BOCHS, EXIT_HALT };
enum log_level { LOG_INFO, LOG_DEBUG };
enum screen_console { SCREEN_AUTO, SCREEN_ON, SCREEN_OFF };
/* Deliberate failures, for the tests of the failure paths themselves. */
enum hv_selftest { SELFTEST_NONE, SELFTEST_PAGE_FAULT, SELFTEST_WRITE_TEXT, SELFTEST_NESTED_PANIC };

struct hv_config {
	u64 slice_ms;           /* round-robin time slice between guests */
	u64 guest_timeout_ms;   /* a guest costing longer (its time and the hypervisor's for it) is ended */
	unsigned exit_method;   /* enum exit_method */
	unsigned log_level;     /* enum log_level */
	bool summary;           /* print per-guest exit statistics at the end */
	u64 shadow_pool;        /* host frames all guests' shadow MMUs may hold together */
	unsigned screen;        /* enum screen_console */
	unsigned selftest;      /* enum hv_selftest */
	u64 cpus;               /* CPUs to run guests on, 0 = all */
};

extern struct hv_config hv_config;

bool hv_config_parse(const char *cmdline, char *err, size_t err_len);
/* One line per accepted option, for the message about a bad command line. */
void hv_config_describe(void (*line)(const char *text));

#endif
