/*
 * Guest RAM. It comes from the frame allocator in 2 MiB runs where possible
 * (so the EPT can use 2 MiB pages) and 4 KiB frames otherwise, and is
 * zeroed, so a guest never sees what was there before. Only RAM: devices
 * and the memory virtualization (EPT or shadow) are the layers above.
 */
#include <string.h>
#include "guest/memory.h"
#include "mm/mm.h"

#define PAGES_PER_2M 512

static u64 table_pages(u64 pages)
{
	return ALIGN_UP(pages * sizeof(u64), PAGE_SIZE) / PAGE_SIZE;
}

/* Fill page_hpa for one 2 MiB block: one aligned run, or single frames. */
static bool alloc_block(struct guest_memory *m, u64 first_page)
{
	u64 run = host_frame_alloc(PAGES_PER_2M, LARGE_PAGE_SIZE);

	for (u64 i = 0; i < PAGES_PER_2M; i++) {
		u64 pa = run ? run + i * PAGE_SIZE : host_frame_alloc(1, PAGE_SIZE);

		if (!pa)
			return false;
		memset((void *)pa, 0, PAGE_SIZE);
		m->page_hpa[first_page + i] = pa;
	}
	return true;
}

static void *walker_gfn_to_hva(struct guest_mem *mem, u64 gfn)
{
	struct guest_memory *m = (struct guest_memory *)((u8 *)mem -
							 offsetof(struct guest_memory, walker));

	return gfn < m->size / PAGE_SIZE ? (void *)m->page_hpa[gfn] : NULL;
}

bool guest_memory_init(struct guest *g)
{
	struct guest_memory *m = &g->mem;
	u64 pages = g->cfg.mem / PAGE_SIZE;

	m->size = g->cfg.mem;
	m->walker.gfn_to_hva = walker_gfn_to_hva;
	m->page_hpa = alloc_zeroed_pages(table_pages(pages));
	if (!m->page_hpa)
		return false;
	for (u64 p = 0; p < pages; p += PAGES_PER_2M)
		if (!alloc_block(m, p))
			return false;
	return true;
}

void guest_memory_free(struct guest *g)
{
	struct guest_memory *m = &g->mem;
	u64 pages = m->size / PAGE_SIZE;

	if (!m->page_hpa)
		return;
	for (u64 p = 0; p < pages; p++)
		if (m->page_hpa[p])
			host_frame_free(m->page_hpa[p], 1);
	free_pages(m->page_hpa, table_pages(pages));
	m->page_hpa = NULL;
}

u64 guest_memory_run_2m(struct guest *g, u64 gfn)
{
	const u64 *hpa = g->mem.page_hpa + gfn;

	if (gfn % PAGES_PER_2M || gfn + PAGES_PER_2M > g->mem.size / PAGE_SIZE ||
	    hpa[0] % LARGE_PAGE_SIZE)
		return 0;
	for (u64 i = 1; i < PAGES_PER_2M; i++)
		if (hpa[i] != hpa[0] + i * PAGE_SIZE)
			return 0;	/* single frames: the host had no free run then */
	return hpa[0];
}

void *guest_gpa_ptr(struct guest *g, u64 gpa, u64 len)
{
	if (gpa >= g->mem.size || len > PAGE_SIZE - (gpa & (PAGE_SIZE - 1)))
		return NULL;
	return (void *)(g->mem.page_hpa[gpa / PAGE_SIZE] + (gpa & (PAGE_SIZE - 1)));
}

bool guest_copy_to(struct guest *g, u64 gpa, const void *src, u64 len)
{
	const u8 *s = src;

	while (len) {
		u64 chunk = PAGE_SIZE - (gpa & (PAGE_SIZE - 1));
		u8 *d;

		if (chunk > len)
			chunk = len;
		d = guest_gpa_ptr(g, gpa, chunk);
		if (!d)
			return false;
		memcpy(d, s, chunk);
		gpa += chunk;
		s += chunk;
		len -= chunk;
	}
	return true;
}
