/*
 * The hypervisor's own page tables: everything identity-mapped, read/write
 * and non-executable, except the image itself, where text is read-only and
 * executable and rodata read-only (CR0.WP, set at entry, makes read-only
 * binding in ring 0). Page 0 stays unmapped so a NULL dereference faults.
 */
#include "mm/paging.h"
#include "mm/mm.h"
#include "mm/pt.h"
#include "mm/pte.h"
#include "mm/frame.h"
#include "arch/x86/cpu.h"
#include "arch/x86/log.h"
#include "arch/x86/panic.h"

static u64 *host_pml4;
static u64 identity_top;  /* everything below is mapped */

static void *host_table_alloc(void *ctx)
{
	(void)ctx;
	return alloc_zeroed_pages(1);
}

static void map_or_panic(u64 start, u64 end, u64 flags, enum pt_level level)
{
	if (!pt_map(&host_pt_format, host_pml4, start, start, end - start, flags, level,
		    host_table_alloc, NULL))
		panic("out of memory building the host page tables");
}

void paging_init(void)
{
	u64 nx = cpu_has_feature(0x80000001, CPUID_EDX, 20) ? PTE_NX : 0;
	u64 top = mm_ram_top() > BOOT_IDENTITY_MAP_END ? ALIGN_UP(mm_ram_top(), LARGE_PAGE_SIZE)
						       : BOOT_IDENTITY_MAP_END;
	u64 image_end = ALIGN_UP((u64)__image_end, PAGE_SIZE);
	u64 small_end = ALIGN_UP(image_end, LARGE_PAGE_SIZE);

	host_pml4 = alloc_zeroed_pages(1);
	if (!host_pml4)
		panic("out of memory building the host page tables");
	map_or_panic(small_end, top, PTE_P | PTE_W | nx, PT_LEVEL_2M);
	map_or_panic(PAGE_SIZE, (u64)__image_start, PTE_P | PTE_W | nx, PT_LEVEL_4K);
	map_or_panic((u64)__image_start, (u64)__text_end, PTE_P, PT_LEVEL_4K);
	map_or_panic((u64)__text_end, (u64)__rodata_end, PTE_P | nx, PT_LEVEL_4K);
	map_or_panic((u64)__rodata_end, small_end, PTE_P | PTE_W | nx, PT_LEVEL_4K);
	write_cr3((u64)host_pml4);
	identity_top = top;
	pr_info("paging: identity map to %llu GiB; text RX, rodata R, data NX%s",
		(unsigned long long)(top >> 30), nx ? "" : " (no NX on this CPU)");
}

void paging_map_device(u64 start, u64 end)
{
	u64 nx = cpu_has_feature(0x80000001, CPUID_EDX, 20) ? PTE_NX : 0;

	start = ALIGN_DOWN(start, LARGE_PAGE_SIZE);
	end = ALIGN_UP(end, LARGE_PAGE_SIZE);
	if (start < identity_top)
		start = identity_top;
	if (start < end)
		map_or_panic(start, end, PTE_P | PTE_W | nx, PT_LEVEL_2M);
}
