/* Command-line option parsing (see options.h). */
#include <stdio.h>
#include <string.h>
#include "lib/options.h"

#define TOKEN_MAX 256

static const struct option_desc *find_option(const struct option_desc *opts, size_t count,
					     const char *name, size_t len)
{
	for (size_t i = 0; i < count; i++)
		if (strlen(opts[i].name) == len && !memcmp(opts[i].name, name, len))
			return &opts[i];
	return NULL;
}

static void list_names(const struct option_desc *opts, size_t count, char *buf, size_t len)
{
	size_t used = 0;

	buf[0] = 0;
	for (size_t i = 0; i < count && used < len; i++)
		used += snprintf(buf + used, len - used, "%s%s", i ? ", " : "", opts[i].name);
}

static bool parse_number(const char *s, u64 *out, bool allow_suffix)
{
	u64 v = 0, base = 10;
	const char *digits;

	if (s[0] == '0' && (s[1] == 'x' || s[1] == 'X')) {
		base = 16;
		s += 2;
	}
	for (digits = s; *s; s++) {
		u64 digit;

		if (*s >= '0' && *s <= '9')
			digit = (u64)(*s - '0');
		else if (base == 16 && *s >= 'a' && *s <= 'f')
			digit = (u64)(*s - 'a' + 10);
		else if (base == 16 && *s >= 'A' && *s <= 'F')
			digit = (u64)(*s - 'A' + 10);
		else
			break;
		if (v > (~0ull - digit) / base)
			return false;  /* overflow */
		v = v * base + digit;
	}
	if (s == digits)
		return false;  /* no digits: "", "0x", or a bare suffix like "K" */
	if (allow_suffix && *s && !s[1]) {
		int shift = *s == 'K' || *s == 'k' ? 10 : *s == 'M' || *s == 'm' ? 20 :
			    *s == 'G' || *s == 'g' ? 30 : -1;

		if (shift < 0 || v > (~0ull >> shift))
			return false;
		v <<= shift;
		s++;
	}
	*out = v;
	return *s == 0;
}

/* A size as it would be written on the command line: 2G, 4M, 12K or bytes. */
static void format_size(char *buf, size_t len, u64 v)
{
	static const char suffix[] = "GMK";

	for (int i = 0; i < 3; i++) {
		unsigned shift = 30 - 10 * (unsigned)i;

		if (v && !(v & ((1ull << shift) - 1))) {
			snprintf(buf, len, "%llu%c", (unsigned long long)(v >> shift), suffix[i]);
			return;
		}
	}
	snprintf(buf, len, "%llu", (unsigned long long)v);
}

static bool set_value(const struct option_desc *o, const char *val, void *cfg, char *err,
		      size_t err_len)
{
	void *field = (u8 *)cfg + o->offset;
	bool size = o->type == OPT_SIZE;
	char lo[24], hi[24];
	u64 n;

	switch (o->type) {
	case OPT_UINT:
	case OPT_SIZE:
		if (size) {
			format_size(lo, sizeof(lo), o->min);
			format_size(hi, sizeof(hi), o->max);
		} else {
			snprintf(lo, sizeof(lo), "%llu", (unsigned long long)o->min);
			snprintf(hi, sizeof(hi), "%llu", (unsigned long long)o->max);
		}
		if (!val || !parse_number(val, &n, size)) {
			snprintf(err, err_len, "option '%s': value '%s' is not a number in %s..%s%s",
				 o->name, val ? val : "", lo, hi,
				 size ? " (K, M, G suffixes allowed)" : "");
			return false;
		}
		if (n < o->min || n > o->max) {
			snprintf(err, err_len, "option '%s': value '%s' is outside %s..%s", o->name,
				 val, lo, hi);
			return false;
		}
		*(u64 *)field = n;
		return true;
	case OPT_CHOICE:
		for (unsigned i = 0; val && o->choices[i]; i++) {
			if (!strcmp(val, o->choices[i])) {
				*(unsigned *)field = i;
				return true;
			}
		}
		{
			char list[128] = "";
			size_t used = 0;

			for (unsigned i = 0; o->choices[i] && used < sizeof(list); i++)
				used += snprintf(list + used, sizeof(list) - used, "%s%s",
						 i ? "|" : "", o->choices[i]);
			snprintf(err, err_len, "option '%s': value '%s' is not one of %s", o->name,
				 val ? val : "", list);
		}
		return false;
	case OPT_STRING:
		if (!val || !*val || strlen(val) >= o->max) {
			snprintf(err, err_len, "option '%s': value must be 1..%llu characters",
				 o->name, (unsigned long long)(o->max - 1));
			return false;
		}
		memcpy(field, val, strlen(val) + 1);
		return true;
	case OPT_FLAG:
		if (val && strcmp(val, "1") && strcmp(val, "0")) {
			snprintf(err, err_len, "option '%s': takes no value, or 0/1", o->name);
			return false;
		}
		*(bool *)field = !val || !strcmp(val, "1");
		return true;
	}
	return false;
}

bool options_parse(const struct option_desc *opts, size_t count, const char *cmdline, void *cfg,
		   char *err, size_t err_len)
{
	const char *p = cmdline;
	u64 seen = 0;  /* options given so far, by table index (tables have < 64) */

	while (p && *p) {
		char token[TOKEN_MAX];
		const char *start, *eq;
		const struct option_desc *o;
		size_t len;

		while (*p == ' ' || *p == '\t')
			p++;
		if (!*p)
			break;
		start = p;
		while (*p && *p != ' ' && *p != '\t')
			p++;
		len = (size_t)(p - start);
		if (len >= sizeof(token)) {
			snprintf(err, err_len, "option '%.20s...' is too long", start);
			return false;
		}
		memcpy(token, start, len);
		token[len] = 0;
		eq = strchr(token, '=');
		o = find_option(opts, count, token, eq ? (size_t)(eq - token) : len);
		if (!o) {
			char names[400];

			list_names(opts, count, names, sizeof(names));
			snprintf(err, err_len, "unknown option '%.*s'; accepted options: %s",
				 (int)(eq ? (size_t)(eq - token) : len), token, names);
			return false;
		}
		if (seen & (1ull << (o - opts))) {
			snprintf(err, err_len, "option '%s' is given twice", o->name);
			return false;
		}
		seen |= 1ull << (o - opts);
		if (!eq && o->type != OPT_FLAG) {
			snprintf(err, err_len, "option '%s' needs a value (%s=...)", o->name, o->name);
			return false;
		}
		if (!set_value(o, eq ? eq + 1 : NULL, cfg, err, err_len))
			return false;
	}
	return true;
}

void options_describe(const struct option_desc *opts, size_t count,
		      void (*print)(const char *line))
{
	for (size_t i = 0; i < count; i++) {
		char line[200];

		snprintf(line, sizeof(line), "  %-14s %s", opts[i].name, opts[i].help);
		print(line);
	}
}
