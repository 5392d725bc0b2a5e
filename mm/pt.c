/* Generic 4-level page-table construction and lookup (see pt.h). */
#include <string.h>
#include "mm/pt.h"
#include "mm/pte.h"

const struct pt_format host_pt_format = {
	.name = "host",
	.present_mask = PTE_P,
	.table_flags = PTE_P | PTE_W,  /* permissions are decided in the leaves */
	.large_flag = PTE_PS,
	.addr_mask = PTE_ADDR_MASK52,
	.large_pat = PTE_PAT_LARGE,
	.small_pat = PTE_PAT4K,
};

const struct pt_format ept_format = {
	.name = "EPT",
	.present_mask = EPT_RWX,
	.table_flags = EPT_RWX,
	.large_flag = EPT_LARGE,
	.addr_mask = PTE_ADDR_MASK52,
};

static bool entry_present(const struct pt_format *fmt, u64 e)
{
	return e & fmt->present_mask;
}

static bool entry_is_leaf(const struct pt_format *fmt, u64 e, int level)
{
	return level == 1 || (e & fmt->large_flag);
}

static u64 *entry_table(const struct pt_format *fmt, u64 e)
{
	return (u64 *)(uintptr_t)(e & fmt->addr_mask);
}

/* Replace a large leaf by a table of smaller leaves with the same mapping. */
static u64 *split_large(const struct pt_format *fmt, u64 *entry, int level, pt_alloc_fn alloc,
			void *ctx)
{
	u64 *table = alloc(ctx);
	u64 old = *entry, child_size = pt_level_size(level - 1);
	/* A large leaf's low address bits include its PAT bit (host format). */
	u64 base = old & fmt->addr_mask & ~(pt_level_size(level) - 1);
	u64 flags = old & ~fmt->addr_mask;

	if (!table)
		return NULL;
	if (level - 1 == PT_LEVEL_4K) {
		flags &= ~fmt->large_flag;
		if (old & fmt->large_pat)
			flags |= fmt->small_pat;
	} else if (old & fmt->large_pat) {
		flags |= fmt->large_pat;
	}
	for (int i = 0; i < PT_ENTRIES; i++)
		table[i] = (base + i * child_size) | flags;
	*entry = (u64)(uintptr_t)table | fmt->table_flags;
	return table;
}

static u64 *next_table(const struct pt_format *fmt, u64 *entry, int level, pt_alloc_fn alloc,
		       void *ctx)
{
	if (!entry_present(fmt, *entry)) {
		u64 *table = alloc(ctx);

		if (!table)
			return NULL;
		*entry = (u64)(uintptr_t)table | fmt->table_flags;
		return table;
	}
	if (entry_is_leaf(fmt, *entry, level))
		return split_large(fmt, entry, level, alloc, ctx);
	return entry_table(fmt, *entry);
}

bool pt_map(const struct pt_format *fmt, u64 *root, u64 va, u64 pa, u64 size,
	    u64 leaf_flags, enum pt_level level, pt_alloc_fn alloc, void *ctx)
{
	u64 page = pt_level_size(level);

	if ((va | pa | size) & (page - 1))
		return false;
	for (u64 off = 0; off < size; off += page) {
		u64 *table = root;

		for (int l = 4; l > (int)level; l--) {
			table = next_table(fmt, &table[PT_INDEX(va + off, l)], l, alloc, ctx);
			if (!table)
				return false;
		}
		if (level > PT_LEVEL_4K && entry_present(fmt, table[PT_INDEX(va + off, level)]) &&
		    !entry_is_leaf(fmt, table[PT_INDEX(va + off, level)], level))
			return false;
		table[PT_INDEX(va + off, level)] =
			(pa + off) | leaf_flags | (level > PT_LEVEL_4K ? fmt->large_flag : 0);
	}
	return true;
}

u64 *pt_lookup(const struct pt_format *fmt, u64 *root, u64 va, enum pt_level *level)
{
	u64 *table = root;

	for (int l = 4; l >= 1; l--) {
		u64 *e = &table[PT_INDEX(va, l)];

		if (!entry_present(fmt, *e))
			return NULL;
		if (entry_is_leaf(fmt, *e, l)) {
			if (level)
				*level = (enum pt_level)l;
			return e;
		}
		table = entry_table(fmt, *e);
	}
	return NULL;
}

static void free_level(const struct pt_format *fmt, u64 *table, int level,
		       void (*free_fn)(void *, void *), void *ctx)
{
	for (int i = 0; i < PT_ENTRIES; i++) {
		u64 e = table[i];

		if (entry_present(fmt, e) && !entry_is_leaf(fmt, e, level)) {
			u64 *child = entry_table(fmt, e);

			free_level(fmt, child, level - 1, free_fn, ctx);
			free_fn(child, ctx);
		}
	}
}

void pt_free_tables(const struct pt_format *fmt, u64 *root, void (*free_fn)(void *table, void *ctx),
		    void *ctx)
{
	free_level(fmt, root, 4, free_fn, ctx);
}
