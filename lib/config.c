/* Hypervisor command line: the option table is the documentation's source. */
#include "lib/config.h"
#include "lib/options.h"

struct hv_config hv_config = {
	.slice_ms = 10,
	.guest_timeout_ms = 60000,
	.exit_method = EXIT_AUTO,
	.log_level = LOG_INFO,
	.summary = true,
	.shadow_pool = 16384,
};

static const char *const exit_choices[] = { "auto", "qemu", "bochs", "halt", NULL };
static const char *const log_choices[] = { "info", "debug", NULL };
static const char *const screen_choices[] = { "auto", "on", "off", NULL };
static const char *const selftest_choices[] = { "none", "page-fault", "write-text", "nested-panic",
						NULL };

static const struct option_desc hv_options[] = {
	{ "slice_ms", OPT_UINT, OPTION_FIELD(struct hv_config, slice_ms), 1, 1000, NULL,
	  "time slice per guest in ms of guest time (default 10)" },
	{ "guest_timeout_ms", OPT_UINT, OPTION_FIELD(struct hv_config, guest_timeout_ms), 1,
	  3600000, NULL, "end a guest that takes longer than this, in the guest and in the hypervisor for it "
	  "(default 60000)" },
	{ "exit", OPT_CHOICE, OPTION_FIELD(struct hv_config, exit_method), 0, 0, exit_choices,
	  "how to end the run: auto|qemu|bochs|halt (default auto)" },
	{ "log", OPT_CHOICE, OPTION_FIELD(struct hv_config, log_level), 0, 0, log_choices,
	  "info|debug (debug traces every VM exit)" },
	{ "summary", OPT_FLAG, OPTION_FIELD(struct hv_config, summary), 0, 0, NULL,
	  "summary=0 hides the per-guest exit table at the end" },
	{ "screen", OPT_CHOICE, OPTION_FIELD(struct hv_config, screen), 0, 0, screen_choices,
	  "log on the framebuffer/VGA too: auto (not under Bochs: its display is slow)|on|off" },
	{ "shadow_pool", OPT_UINT, OPTION_FIELD(struct hv_config, shadow_pool), 64, 1u << 24, NULL,
	  "host frames all shadow guests' shadow MMUs may hold together (default 16384)" },
	{ "cpus", OPT_UINT, OPTION_FIELD(struct hv_config, cpus), 0, 64, NULL,
	  "CPUs to use, the boot CPU included (default 0: every CPU the ACPI MADT lists)" },
	{ "selftest", OPT_CHOICE, OPTION_FIELD(struct hv_config, selftest), 0, 0, selftest_choices,
	  "fail on purpose after boot: page-fault|write-text|nested-panic (tests)" },
};

bool hv_config_parse(const char *cmdline, char *err, size_t err_len)
{
	/* GRUB may pass the kernel's path as the first word. */
	if (cmdline[0] == '/') {
		while (*cmdline && *cmdline != ' ')
			cmdline++;
	}
	return options_parse(hv_options, ARRAY_SIZE(hv_options), cmdline, &hv_config, err,
			     err_len);
}

void hv_config_describe(void (*line)(const char *text))
{
	options_describe(hv_options, ARRAY_SIZE(hv_options), line);
}
