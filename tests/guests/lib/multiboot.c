/*
 * The multiboot v1 info block (Multiboot Specification 0.6.96 section 3.3): RAM size,
 * command line, memory map; and which RAM holds nothing of this kernel, for tests that
 * write all of memory.
 */
#include "internal.h"

#define MMAP_TYPE_RAM 1

extern char _image_start[], _end[];

static const struct multiboot_info *info;

void multiboot_init(u32 magic, unsigned long addr)
{
	if (magic != MB_BOOTLOADER_MAGIC) {
		printf("guest: bad multiboot magic %#x, ignoring the info block\n", magic);
		return;
	}
	info = (const struct multiboot_info *)addr;
}

const struct multiboot_info *mb_info(void)
{
	return info;
}

u64 ram_end(void)
{
	if (!info || !(info->flags & MB_INFO_MEM))
		return 0;
	return MIB + (u64)info->mem_upper * 1024;
}

const char *cmdline(void)
{
	if (!info || !(info->flags & MB_INFO_CMDLINE) || !info->cmdline)
		return "";
	return (const char *)(unsigned long)info->cmdline;
}

static bool is_space(char c)
{
	return c == ' ' || c == '\t';
}

/*
 * Finds a command-line word that is `name` (sep 0) or starts with `name` followed by sep
 * (e.g. '=' for key=value); returns the first character after the name, or NULL.
 */
static const char *find_word(const char *name, char sep)
{
	size_t len = strlen(name);
	const char *p = cmdline();

	while (*p) {
		while (is_space(*p))
			p++;
		if (!strncmp(p, name, len)) {
			char next = p[len];

			if (sep ? next == sep : !next || is_space(next))
				return p + len;
		}
		while (*p && !is_space(*p))
			p++;
	}
	return NULL;
}

bool cmdline_has(const char *word)
{
	return find_word(word, 0) != NULL;
}

bool cmdline_get_u64(const char *key, u64 *val)
{
	const char *p = find_word(key, '=');
	u64 v = 0;
	u32 base = 10;

	if (!p)
		return false;
	p++;
	if (p[0] == '0' && (p[1] == 'x' || p[1] == 'X')) {
		base = 16;
		p += 2;
	}
	if (!*p || is_space(*p))
		return false;
	for (; *p && !is_space(*p); p++) {
		u32 digit;

		if (*p >= '0' && *p <= '9')
			digit = *p - '0';
		else if (base == 16 && (*p | 0x20) >= 'a' && (*p | 0x20) <= 'f')
			digit = (*p | 0x20) - 'a' + 10;
		else
			return false;
		v = v * base + digit;
	}
	*val = v;
	return true;
}

unsigned long image_start(void)
{
	return (unsigned long)_image_start;
}

unsigned long image_end(void)
{
	return (unsigned long)_end;
}

/* Memory this kernel must not overwrite, as [start, end) byte ranges. */
struct range {
	u64 start, end;
};

#define MAX_RESERVED 8

static unsigned int add_range(struct range *r, unsigned int n, u64 start, u64 len)
{
	if (len && n < MAX_RESERVED) {
		r[n].start = ALIGN_DOWN(start, PAGE_SIZE);
		r[n].end = ALIGN_UP(start + len, PAGE_SIZE);
		n++;
	}
	return n;
}

static unsigned int reserved_ranges(struct range *r)
{
	unsigned int n = add_range(r, 0, image_start(), image_end() - image_start());

	if (!info)
		return n;
	n = add_range(r, n, (unsigned long)info, sizeof(*info));
	if (info->flags & MB_INFO_CMDLINE)
		n = add_range(r, n, info->cmdline, strlen(cmdline()) + 1);
	if (info->flags & MB_INFO_MMAP)
		n = add_range(r, n, info->mmap_addr, info->mmap_length);
	if (info->flags & MB_INFO_MODS)
		n = add_range(r, n, info->mods_addr, info->mods_count * 16);
	if (info->flags & MB_INFO_LOADER_NAME)
		n = add_range(r, n, info->boot_loader_name,
			      strlen((const char *)(unsigned long)info->boot_loader_name) + 1);
	/* Sorted by start, so one pass in emit_free() can cut them out. */
	for (unsigned int i = 1; i < n; i++)
		for (unsigned int j = i; j > 0 && r[j].start < r[j - 1].start; j--) {
			struct range t = r[j];

			r[j] = r[j - 1];
			r[j - 1] = t;
		}
	return n;
}

/* Calls fn for the parts of [start, end) outside the sorted reserved ranges. */
static void emit_free(u64 start, u64 end, const struct range *res, unsigned int nres,
		      void (*fn)(u64, u64, void *), void *ctx)
{
	start = ALIGN_UP(start, PAGE_SIZE);
	end = ALIGN_DOWN(end, PAGE_SIZE);
	for (unsigned int i = 0; i < nres && start < end; i++) {
		if (res[i].end <= start || res[i].start >= end)
			continue;
		if (res[i].start > start)
			fn(start, res[i].start, ctx);
		start = res[i].end;
	}
	if (start < end)
		fn(start, end, ctx);
}

void for_each_free_ram(u64 min, u64 max, void (*fn)(u64 start, u64 end, void *ctx), void *ctx)
{
	struct range res[MAX_RESERVED];
	unsigned int nres = reserved_ranges(res);

	if (sizeof(long) == 4 && max > (1ull << 32))
		max = 1ull << 32;	/* a 32-bit kernel cannot address more */
	if (ram_end() && max > ram_end())
		max = ram_end();

	if (!info || !(info->flags & MB_INFO_MMAP)) {
		u64 lo = min > MIB ? min : MIB;

		if (lo < max)
			emit_free(lo, max, res, nres, fn, ctx);
		return;
	}
	u64 p = info->mmap_addr, map_end = p + info->mmap_length;

	while (p < map_end) {
		const struct multiboot_mmap_entry *e = (const void *)(unsigned long)p;
		u64 lo = e->addr > min ? e->addr : min;
		u64 hi = e->addr + e->len < max ? e->addr + e->len : max;

		if (e->type == MMAP_TYPE_RAM && lo < hi)
			emit_free(lo, hi, res, nres, fn, ctx);
		p += e->size + sizeof(e->size);
	}
}
