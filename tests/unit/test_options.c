/*
 * Tests of the key=value option parser (lib/options.c): every option type,
 * ranges, K/M/G suffixes, overflow, hex, the error messages, and the
 * tokenizer's edge cases (empty lines, runs of blanks, over-long tokens).
 */
#include <string.h>

#include "unit.h"
#include "lib/options.h"

struct cfg {
	u64 mem;
	u64 cpus;
	u64 any;
	u64 anysize;
	unsigned mmu;
	char name[16];
	bool debug;
};

static const char *const mmu_choices[] = { "ept", "shadow", NULL };

static const struct option_desc opts[] = {
	{ "mem", OPT_SIZE, OPTION_FIELD(struct cfg, mem), 1ull << 20, 4ull << 30, NULL,
	  "guest memory" },
	{ "cpus", OPT_UINT, OPTION_FIELD(struct cfg, cpus), 1, 8, NULL, "vCPUs" },
	{ "any", OPT_UINT, OPTION_FIELD(struct cfg, any), 0, ~0ull, NULL, "any number" },
	{ "anysize", OPT_SIZE, OPTION_FIELD(struct cfg, anysize), 0, ~0ull, NULL, "any size" },
	{ "mmu", OPT_CHOICE, OPTION_FIELD(struct cfg, mmu), 0, 0, mmu_choices, "MMU kind" },
	{ "name", OPT_STRING, OPTION_FIELD(struct cfg, name), 0, 16, NULL, "guest name" },
	{ "debug", OPT_FLAG, OPTION_FIELD(struct cfg, debug), 0, 0, NULL, "verbose" },
};

static struct cfg cfg;
static char err[300];

static bool parse(const char *line)
{
	memset(&cfg, 0, sizeof(cfg));
	cfg.mmu = 7;  /* no choice index: shows whether mmu= was stored */
	err[0] = 0;
	return options_parse(opts, ARRAY_SIZE(opts), line, &cfg, err, sizeof(err));
}

/* Parse "key=value" for one numeric option and return the stored value. */
static bool parse_num(const char *line, u64 *field, u64 *out)
{
	bool ok = parse(line);

	*out = *field;
	return ok;
}

TEST(empty_command_lines)
{
	static const char *const lines[] = { "", " ", "\t", "  \t \t  " };

	for (unsigned i = 0; i < ARRAY_SIZE(lines); i++) {
		CHECK(parse(lines[i]));
		CHECK_EQ(cfg.mem, 0);
		CHECK_EQ(cfg.mmu, 7);
		CHECK(!cfg.debug);
	}
	CHECK(options_parse(opts, ARRAY_SIZE(opts), NULL, &cfg, err, sizeof(err)));
}

TEST(every_type_parsed)
{
	CHECK(parse("mem=64M cpus=2 any=12345 anysize=3K mmu=shadow name=guest-a debug"));
	CHECK_EQ(cfg.mem, 64ull << 20);
	CHECK_EQ(cfg.cpus, 2);
	CHECK_EQ(cfg.any, 12345);
	CHECK_EQ(cfg.anysize, 3072);
	CHECK_EQ(cfg.mmu, 1);
	CHECK(!strcmp(cfg.name, "guest-a"));
	CHECK(cfg.debug);
	CHECK_EQ(err[0], 0);
}

TEST(blanks_between_tokens)
{
	CHECK(parse("\t\tcpus=3  \t  mmu=ept\t\tdebug   "));
	CHECK_EQ(cfg.cpus, 3);
	CHECK_EQ(cfg.mmu, 0);
	CHECK(cfg.debug);
}

TEST(decimal_and_hex)
{
	u64 v;

	CHECK(parse_num("any=0", &cfg.any, &v) && v == 0);
	CHECK(parse_num("any=007", &cfg.any, &v) && v == 7);
	CHECK(parse_num("any=0x1f", &cfg.any, &v) && v == 0x1f);
	CHECK(parse_num("any=0XAbCd", &cfg.any, &v) && v == 0xabcd);
	CHECK(parse_num("any=18446744073709551615", &cfg.any, &v) && v == ~0ull);
	CHECK(parse_num("any=0xffffffffffffffff", &cfg.any, &v) && v == ~0ull);
}

TEST(bad_numbers_rejected)
{
	static const char *const bad[] = {
		"any=", "any=x", "any=0x", "any=0xg", "any=12abc", "any=-1", "any=+1",
		"any=1K", "any=1.5", "any=ff", "any= 1",
		"any=18446744073709551616", "any=99999999999999999999",
		"any=0x10000000000000000",
	};

	for (unsigned i = 0; i < ARRAY_SIZE(bad); i++) {
		CHECK(!parse(bad[i]));
		CHECK(strstr(err, "option 'any'"));
		CHECK(strstr(err, "is not a number in 0..18446744073709551615"));
	}
}

TEST(ranges_inclusive)
{
	u64 v;

	CHECK(parse_num("cpus=1", &cfg.cpus, &v) && v == 1);
	CHECK(parse_num("cpus=8", &cfg.cpus, &v) && v == 8);
	CHECK(!parse("cpus=0"));
	CHECK(strstr(err, "'cpus': value '0' is outside 1..8"));
	CHECK(!parse("cpus=9"));
	CHECK(!parse("cpus=0x100000000"));  /* not truncated to a small value */
	CHECK(parse_num("mem=1M", &cfg.mem, &v) && v == 1ull << 20);
	CHECK(parse_num("mem=4G", &cfg.mem, &v) && v == 4ull << 30);
	CHECK(!parse("mem=1023K"));
	CHECK(strstr(err, "is outside 1M..4G"));
	CHECK(!parse("mem=1Q"));
	CHECK(strstr(err, "is not a number in 1M..4G (K, M, G suffixes allowed)"));
	CHECK(!parse("mem=4294967297"));
}

/* Which of two values was meant is not the parser's guess to make. */
TEST(an_option_given_twice_is_refused)
{
	CHECK(!parse("cpus=2 mem=1M cpus=3"));
	CHECK(strstr(err, "option 'cpus' is given twice"));
	CHECK(!parse("debug debug=0"));
	CHECK(strstr(err, "option 'debug' is given twice"));
	CHECK(parse("cpus=2 mem=1M"));
}

TEST(size_suffixes)
{
	u64 v;

	CHECK(parse_num("anysize=1k", &cfg.anysize, &v) && v == 1024);
	CHECK(parse_num("anysize=1K", &cfg.anysize, &v) && v == 1024);
	CHECK(parse_num("anysize=5m", &cfg.anysize, &v) && v == 5ull << 20);
	CHECK(parse_num("anysize=5M", &cfg.anysize, &v) && v == 5ull << 20);
	CHECK(parse_num("anysize=3g", &cfg.anysize, &v) && v == 3ull << 30);
	CHECK(parse_num("anysize=3G", &cfg.anysize, &v) && v == 3ull << 30);
	CHECK(parse_num("anysize=0x10M", &cfg.anysize, &v) && v == 16ull << 20);
	CHECK(parse_num("anysize=12345", &cfg.anysize, &v) && v == 12345);
	/* Largest values that fit in 64 bits, and one past them. */
	CHECK(parse_num("anysize=17179869183G", &cfg.anysize, &v) && v == 17179869183ull << 30);
	CHECK(!parse("anysize=17179869184G"));
	CHECK(parse_num("anysize=18014398509481983K", &cfg.anysize, &v));
	CHECK(!parse("anysize=18014398509481984K"));
	CHECK(!parse("anysize=17592186044416M"));
}

TEST(bad_sizes_rejected)
{
	static const char *const bad[] = {
		"anysize=1T", "anysize=1KB", "anysize=1KK", "anysize=K1",
		"anysize=1.5G", "anysize=0xK", "anysize=K", "anysize=M", "anysize=g",
	};

	for (unsigned i = 0; i < ARRAY_SIZE(bad); i++) {
		CHECK(!parse(bad[i]));
		CHECK(strstr(err, "option 'anysize'"));
	}
}

TEST(choices)
{
	CHECK(parse("mmu=ept"));
	CHECK_EQ(cfg.mmu, 0);
	CHECK(parse("mmu=shadow"));
	CHECK_EQ(cfg.mmu, 1);
	CHECK(!parse("mmu=EPT"));
	CHECK(!strcmp(err, "option 'mmu': value 'EPT' is not one of ept|shadow"));
	CHECK(!parse("mmu=ep"));
	CHECK(!parse("mmu=shadows"));
	CHECK(!parse("mmu="));
	CHECK(strstr(err, "value '' is not one of ept|shadow"));
	CHECK(!parse("mmu"));
	CHECK(strstr(err, "needs a value (mmu=...)"));
}

TEST(strings)
{
	CHECK(parse("name=a"));
	CHECK(!strcmp(cfg.name, "a"));
	CHECK(parse("name=123456789012345"));  /* 15 characters + NUL fill the field */
	CHECK(!strcmp(cfg.name, "123456789012345"));
	CHECK(!parse("name=1234567890123456"));
	CHECK(!strcmp(err, "option 'name': value must be 1..15 characters"));
	CHECK(!parse("name="));
	CHECK(strstr(err, "1..15 characters"));
	CHECK(parse("name=a=b"));  /* only the first '=' separates */
	CHECK(!strcmp(cfg.name, "a=b"));
}

TEST(flags)
{
	CHECK(parse("debug"));
	CHECK(cfg.debug);
	CHECK(parse("debug=1"));
	CHECK(cfg.debug);
	CHECK(parse("debug=0"));
	CHECK(!cfg.debug);
	CHECK(!parse("debug=yes"));
	CHECK(!strcmp(err, "option 'debug': takes no value, or 0/1"));
	CHECK(!parse("debug="));
	CHECK(!parse("debug=01"));
}

TEST(missing_values)
{
	static const char *const names[] = { "mem", "cpus", "name", "anysize" };

	for (unsigned i = 0; i < ARRAY_SIZE(names); i++) {
		char want[80];

		CHECK(!parse(names[i]));
		snprintf(want, sizeof(want), "option '%s' needs a value (%s=...)", names[i],
			 names[i]);
		CHECK(!strcmp(err, want));
	}
}

TEST(unknown_option_lists_accepted_names)
{
	const char *want = "unknown option 'memory'; accepted options: mem, cpus, any, "
			   "anysize, mmu, name, debug";

	CHECK(!parse("cpus=2 memory=64M"));
	CHECK(!strcmp(err, want));
	CHECK(!parse("memory"));
	CHECK(!strcmp(err, want));
	CHECK(!parse("me=1"));  /* a prefix of a name is not that name */
	CHECK(strstr(err, "unknown option 'me'"));
	CHECK(!parse("=5"));
	CHECK(strstr(err, "unknown option ''"));
	CHECK(!parse("MEM=1M"));  /* names are case-sensitive */
}

TEST(errors_stop_the_parse)
{
	CHECK(!parse("cpus=2 cpus=99 name=late"));
	CHECK_EQ(cfg.cpus, 2);
	CHECK_EQ(cfg.name[0], 0);
}

TEST(token_length_limit)
{
	char line[400];

	/* 255 characters: still a token; the string option itself rejects it. */
	strcpy(line, "name=");
	memset(line + 5, 'a', 250);
	line[255] = 0;
	CHECK(!parse(line));
	CHECK(strstr(err, "1..15 characters"));
	/* 256 characters: too long for the tokenizer. */
	memset(line + 5, 'a', 251);
	line[256] = 0;
	CHECK(!parse(line));
	CHECK(!strcmp(err, "option 'name=aaaaaaaaaaaaaaa...' is too long"));
	memset(line, 'z', sizeof(line) - 1);
	line[sizeof(line) - 1] = 0;
	CHECK(!parse(line));
	CHECK(strstr(err, "is too long"));
}

TEST(small_error_buffers_truncate)
{
	char small[12];

	memset(&cfg, 0, sizeof(cfg));
	CHECK(!options_parse(opts, ARRAY_SIZE(opts), "bogus=1", &cfg, small, sizeof(small)));
	CHECK(!strcmp(small, "unknown opt"));
	CHECK(!options_parse(opts, ARRAY_SIZE(opts), "mmu=x", &cfg, small, sizeof(small)));
	CHECK_EQ(strlen(small), sizeof(small) - 1);
}

/* Many long names or choices overflow the internal lists: truncated, not overrun. */
TEST(long_name_and_choice_lists_truncated)
{
	static char names[40][40];
	static struct option_desc many[40];
	static const char *choices[30];
	static char choice_text[29][32];
	u64 dummy[2];

	for (int i = 0; i < 40; i++) {
		snprintf(names[i], sizeof(names[i]), "a_rather_long_option_name_%02d", i);
		many[i] = (struct option_desc){ names[i], OPT_FLAG, 0, 0, 0, NULL, "" };
	}
	CHECK(!options_parse(many, 40, "nope", dummy, err, sizeof(err)));
	CHECK(strstr(err, "accepted options: a_rather_long_option_name_00, "));
	CHECK(strlen(err) < sizeof(err));

	for (int i = 0; i < 29; i++) {
		snprintf(choice_text[i], sizeof(choice_text[i]), "choice_number_%02d", i);
		choices[i] = choice_text[i];
	}
	choices[29] = NULL;
	many[0] = (struct option_desc){ "c", OPT_CHOICE, 0, 0, 0, choices, "" };
	CHECK(options_parse(many, 1, "c=choice_number_28", dummy, err, sizeof(err)));
	CHECK_EQ(*(unsigned *)dummy, 28);
	CHECK(!options_parse(many, 1, "c=x", dummy, err, sizeof(err)));
	CHECK(strstr(err, "is not one of choice_number_00|choice_number_01|"));
}

static char described[8][200];
static int described_count;

static void collect(const char *line)
{
	if (described_count < 8)
		snprintf(described[described_count++], sizeof(described[0]), "%s", line);
}

TEST(describe_prints_one_line_per_option)
{
	described_count = 0;
	options_describe(opts, ARRAY_SIZE(opts), collect);
	CHECK_EQ(described_count, ARRAY_SIZE(opts));
	CHECK(!strcmp(described[0], "  mem            guest memory"));
	CHECK(!strcmp(described[6], "  debug          verbose"));
}

UNIT_MAIN()
