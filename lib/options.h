/*
 * Table-driven "key=value key=value" command-line parsing, used for the
 * hypervisor's own command line and for each guest's module line. Pure
 * code (host unit-tested). An unknown key or a bad value is an error whose
 * message names the option and lists what is accepted.
 */
#ifndef LIB_OPTIONS_H
#define LIB_OPTIONS_H

#include "lib/types.h"

enum option_type {
	OPT_UINT,    /* decimal or 0x hex, within [min, max] */
	OPT_SIZE,    /* like OPT_UINT, with an optional K, M or G suffix */
	OPT_CHOICE,  /* one of 'choices'; stored as its index (unsigned int) */
	OPT_STRING,  /* copied into a char[max] field */
	OPT_FLAG,    /* bare key (or key=1/0); stored as bool */
};

struct option_desc {
	const char *name;
	enum option_type type;
	size_t offset;                 /* of the field in the config struct */
	u64 min, max;                  /* UINT/SIZE range; STRING buffer size */
	const char *const *choices;    /* CHOICE: NULL-terminated */
	const char *help;
};

#define OPTION_FIELD(type, field) offsetof(type, field)

/* Parse 'cmdline' into 'cfg' (an option may be given once; count < 64).
 * Returns false and fills 'err' on error. */
bool options_parse(const struct option_desc *opts, size_t count, const char *cmdline, void *cfg,
		   char *err, size_t err_len);

/* Print "name=..." help lines through 'print' (for --help style output). */
void options_describe(const struct option_desc *opts, size_t count,
		      void (*print)(const char *line));

#endif
