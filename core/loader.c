/*
 * Guest loader: one GRUB module = one guest. The module's command line is
 * "name=N mem=SIZE mmu=ept|shadow -- args for the guest"; the image is
 * loaded as QEMU's -kernel would (tests/guests/PLATFORM.md): segments at
 * their physical addresses, a multiboot v1 information block below 1 MiB,
 * and for plain ELF64 an identity map of the first 4 GiB. A Linux kernel
 * (bzImage or vmlinux) goes through its own boot protocol (core/linux.c).
 */
#include <stdio.h>
#include <string.h>
#include "core/loader.h"
#include "core/image.h"
#include "core/linux.h"
#include "devices/acpi_tables.h"
#include "guest/memory.h"
#include "lib/options.h"
#include "arch/x86/log.h"
#include "mm/pte.h"
#include "shadow/reclaim.h"

#define MB1_BOOTLOADER_MAGIC 0x2badb002u
#define MB1_INFO_GPA 0x7000ull        /* info, cmdline and mmap: 0x7000-0x7fff */
#define MB1_CMDLINE_GPA 0x7400ull
#define MB1_MODS_GPA 0x7b00ull
#define MB1_MMAP_GPA 0x7c00ull
#define MB1_FLAG_MEM BIT(0)
#define MB1_FLAG_CMDLINE BIT(2)
#define MB1_FLAG_MODS BIT(3)
#define MB1_FLAG_MMAP BIT(6)
#define LOW_RAM_END 0x9fc00ull        /* conventional memory as a PC reports it */
#define IDMAP_PML4_GPA 0x1000ull      /* ELF64 identity map: 0x1000-0x6fff */
/* Segments must not overlap what we place below (kvm-unit-tests' realmode.flat is linked
 * at 0x8000). */
#define IMAGE_MIN_GPA 0x8000ull
#define DEFAULT_MEM (32ull << 20)

/* In enum guest_mmu order. */
static const char *const mmu_choices[] = { "ept", "shadow", NULL };
static const char *const mmu_names[] = { "EPT", "shadow paging" };
static const char *const selftest_choices[] = { "none", "bad-guest-state", NULL };
/* In enum shadow_reclaim_policy order. */
static const char *const reclaim_choices[] = { "clock", "fifo", NULL };
/* flood= and the other shadow switches: 0 on, 1 off. */
static const char *const flood_choices[] = { "on", "off", NULL };
static const char *const off_on_choices[] = { "off", "on", NULL };
static const char *const scan_pages_choices[] = { "2m", "4k", NULL };

static const struct option_desc guest_options[] = {
	{ "name", OPT_STRING, OPTION_FIELD(struct guest_config, name), 0, GUEST_NAME_MAX, NULL,
	  "guest name used in the log (default guestN)" },
	{ "mem", OPT_SIZE, OPTION_FIELD(struct guest_config, mem), 4ull << 20, 2048ull << 20,
	  NULL, "RAM size, a multiple of 2M (default 32M)" },
	{ "mmu", OPT_CHOICE, OPTION_FIELD(struct guest_config, mmu), 0, 0, mmu_choices,
	  "ept|shadow: how guest memory is virtualised (default ept)" },
	{ "shadow_pages", OPT_UINT, OPTION_FIELD(struct guest_config, shadow_pages), SHADOW_MIN_FRAMES,
	  1u << 22, NULL, "mmu=shadow: most host frames its shadow MMU may hold, tables and "
	  "bookkeeping (default 4% of its RAM in frames, >= 128)" },
	{ "reclaim", OPT_CHOICE, OPTION_FIELD(struct guest_config, reclaim), 0, 0, reclaim_choices,
	  "mmu=shadow: clock (recently used stay) or fifo (oldest go, KVM's way)" },
	{ "flood", OPT_CHOICE, OPTION_FIELD(struct guest_config, flood), 0, 0, flood_choices,
	  "mmu=shadow: on: unshadow guest tables written but no longer used (default); off" },
	{ "flood_trace", OPT_CHOICE, OPTION_FIELD(struct guest_config, flood_trace), 0, 0,
	  off_on_choices, "mmu=shadow: on: keep every flood-detection event and log those of "
	  "tables unshadowed while live when the guest ends (debug; default off)" },
	{ "fastpath", OPT_CHOICE, OPTION_FIELD(struct guest_config, fastpath), 0, 0, flood_choices,
	  "mmu=shadow: on: a fault derives only the shadow levels it misses (default); off" },
	{ "fastemul", OPT_CHOICE, OPTION_FIELD(struct guest_config, fastemul), 0, 0, flood_choices,
	  "mmu=shadow: on: the emulator translates through the shadow tables where they tell "
	  "(default); off" },
	{ "prefetch", OPT_CHOICE, OPTION_FIELD(struct guest_config, prefetch), 0, 0, flood_choices,
	  "mmu=shadow: on: a fault also maps its neighbours already accessed (default); off" },
	{ "unsync", OPT_CHOICE, OPTION_FIELD(struct guest_config, unsync), 0, 0, flood_choices,
	  "mmu=shadow: on: written guest leaf tables stay writable until the guest's next TLB "
	  "invalidation (default); off" },
	{ "largepages", OPT_CHOICE, OPTION_FIELD(struct guest_config, largepages), 0, 0,
	  flood_choices, "mmu=shadow: on: a guest 2 MiB page whose host run allows is one 2 MiB "
	  "spte (default); off" },
	{ "scan_ms", OPT_UINT, OPTION_FIELD(struct guest_config, scan_ms), 0, 60000, NULL,
	  "page-ageing scan every N ms of guest time (0: off)" },
	{ "scan_pages", OPT_CHOICE, OPTION_FIELD(struct guest_config, scan_pages), 0, 0,
	  scan_pages_choices, "mmu=ept ageing: 2m (default): keep 2 MiB EPT pages where cold, split "
	  "used ones; 4k: 4 KiB EPT pages everywhere, exact ages from the first scan" },
	{ "vcpus", OPT_UINT, OPTION_FIELD(struct guest_config, vcpus), 1, GUEST_MAX_VCPUS, NULL,
	  "virtual CPUs: vCPU 0 starts, the others wait for INIT and SIPI (default 1)" },
	{ "timeout_ms", OPT_UINT, OPTION_FIELD(struct guest_config, timeout_ms), 1, 3600000, NULL,
	  "end it after this much time, its own and the hypervisor's for it (default "
	  "guest_timeout_ms)" },
	{ "selftest", OPT_CHOICE, OPTION_FIELD(struct guest_config, selftest), 0, 0,
	  selftest_choices, "bad-guest-state: make VM entry fail on purpose (tests)" },
};

/* Split "opts -- args" and parse the options. */
static bool parse_guest_cmdline(const char *line, struct guest_config *cfg, char *err,
				size_t err_len)
{
	char opts[BOOT_CMDLINE_MAX];
	const char *sep = strstr(line, "--");

	snprintf(opts, sizeof(opts), "%.*s", sep ? (int)(sep - line) : (int)strlen(line), line);
	if (sep)
		snprintf(cfg->args, sizeof(cfg->args), "%s", sep[2] == ' ' ? sep + 3 : sep + 2);
	if (!options_parse(guest_options, ARRAY_SIZE(guest_options), opts, cfg, err, err_len))
		return false;
	if (cfg->mem % LARGE_PAGE_SIZE) {
		snprintf(err, err_len, "mem=%lluK is not a multiple of 2M",
			 (unsigned long long)(cfg->mem >> 10));
		return false;
	}
	return true;
}

struct mb1_info {
	u32 flags, mem_lower, mem_upper, boot_device, cmdline, mods_count, mods_addr;
	u32 syms[4];
	u32 mmap_length, mmap_addr;
} PACKED;

struct mb1_module {
	u32 mod_start, mod_end, string, reserved;
} PACKED;

struct mb1_mmap_entry {
	u32 size;
	u64 base, length;
	u32 type;
} PACKED;

static bool write_multiboot_info(struct guest *g, const struct mb1_module *env)
{
	struct mb1_mmap_entry mmap[2] = {
		{ 20, 0, LOW_RAM_END, 1 },
		{ 20, 1ull << 20, g->mem.size - (1ull << 20), 1 },
	};
	struct mb1_info info = {
		.flags = MB1_FLAG_MEM | MB1_FLAG_CMDLINE | MB1_FLAG_MMAP,
		.mem_lower = LOW_RAM_END >> 10,
		.mem_upper = (u32)((g->mem.size - (1ull << 20)) >> 10),
		.cmdline = MB1_CMDLINE_GPA,
		.mmap_length = sizeof(mmap),
		.mmap_addr = MB1_MMAP_GPA,
	};
	if (env) {
		info.flags |= MB1_FLAG_MODS;
		info.mods_count = 1;
		info.mods_addr = MB1_MODS_GPA;
		if (!guest_copy_to(g, MB1_MODS_GPA, env, sizeof(*env)))
			return false;
	}
	char cmdline[MB1_MMAP_GPA - MB1_CMDLINE_GPA];

	snprintf(cmdline, sizeof(cmdline), "%s%s%s", g->cfg.name, g->cfg.args[0] ? " " : "",
		 g->cfg.args);
	return guest_copy_to(g, MB1_INFO_GPA, &info, sizeof(info)) &&
	       guest_copy_to(g, MB1_CMDLINE_GPA, cmdline, strlen(cmdline) + 1) &&
	       guest_copy_to(g, MB1_MMAP_GPA, mmap, sizeof(mmap));
}

/* PML4 -> PDPT -> 4 PDs of 2 MiB pages: identity map of 0-4 GiB. */
static bool write_identity_map(struct guest *g)
{
	u64 pdpt = IDMAP_PML4_GPA + PAGE_SIZE, pd = pdpt + PAGE_SIZE;
	u64 e = pdpt | PTE_P | PTE_W;

	if (!guest_copy_to(g, IDMAP_PML4_GPA, &e, 8))
		return false;
	for (u64 i = 0; i < 4; i++) {
		e = (pd + i * PAGE_SIZE) | PTE_P | PTE_W;
		if (!guest_copy_to(g, pdpt + i * 8, &e, 8))
			return false;
	}
	for (u64 i = 0; i < 2048; i++) {
		e = (i << 21) | PTE_P | PTE_W | PTE_PS;
		if (!guest_copy_to(g, pd + i * 8, &e, 8))
			return false;
	}
	return true;
}

static bool load_segments(struct guest *g, const u8 *data, const struct guest_image *img,
			  char *err, size_t err_len)
{
	if (img->lowest < IMAGE_MIN_GPA || img->highest > g->mem.size) {
		snprintf(err, err_len, "image occupies %#llx-%#llx; it must lie in %#llx-%#llx "
			 "(raise mem=?)", (unsigned long long)img->lowest,
			 (unsigned long long)img->highest, (unsigned long long)IMAGE_MIN_GPA,
			 (unsigned long long)g->mem.size);
		return false;
	}
	for (int i = 0; i < img->seg_count; i++) {
		const struct image_segment *s = &img->seg[i];

		/* RAM is zeroed already, which covers the bss part. */
		if (!guest_copy_to(g, s->paddr, data + s->file_offset, s->file_size)) {
			snprintf(err, err_len, "segment %d does not fit in guest RAM", i);
			return false;
		}
	}
	return true;
}

/* In enum companion_kind order. */
static const char *const companion_options[] = { "env_for", "initrd_for" };

const char *loader_companion_option(enum companion_kind kind)
{
	return companion_options[kind];
}

size_t loader_companion_target(const struct boot_module *m, const char **name,
			       enum companion_kind *kind)
{
	for (int k = 0; k < COMPANION_KINDS; k++) {
		size_t n = strlen(companion_options[k]);

		if (strncmp(m->cmdline, companion_options[k], n) || m->cmdline[n] != '=')
			continue;
		*name = m->cmdline + n + 1;
		*kind = (enum companion_kind)k;
		return strcspn(*name, " \t");
	}
	return 0;
}

bool loader_configure(const struct boot_module *m, int index, struct guest_config *cfg,
		      char *err, size_t err_len)
{
	memset(cfg, 0, sizeof(*cfg));
	snprintf(cfg->name, sizeof(cfg->name), "guest%d", index);
	cfg->mem = DEFAULT_MEM;
	cfg->mmu = MMU_EPT;
	cfg->vcpus = 1;
	return parse_guest_cmdline(m->cmdline, cfg, err, err_len);
}

/* The environment module goes on the first page after the image, as QEMU's
 * multiboot loader places modules. */
static bool load_env(struct guest *g, const struct boot_module *env, const struct guest_image *img,
		     struct mb1_module *out, char *err, size_t err_len)
{
	u64 at = ALIGN_UP(img->highest, PAGE_SIZE), len = env->end - env->start;

	*out = (struct mb1_module){ (u32)at, (u32)(at + len), 0, 0 };
	if (at + len > g->mem.size || !guest_copy_to(g, at, (const void *)env->start, len)) {
		snprintf(err, err_len, "environment module (%llu bytes) does not fit after the image",
			 (unsigned long long)len);
		return false;
	}
	return true;
}

/* A Linux kernel: a bzImage, or a vmlinux whose segments are loaded (img);
 * long mode with the identity map, as for ELF64. */
static bool load_linux(struct guest *g, const struct boot_module *m, const struct guest_image *img,
		       const struct boot_module *env, const struct boot_module *initrd,
		       struct guest_boot_state *bs, char *err, size_t err_len)
{
	if (env) {
		snprintf(err, err_len, "env_for= is for multiboot kernels; give Linux its "
			 "command line after --");
		return false;
	}
	if (!linux_load(g, (const u8 *)m->start, m->end - m->start, img, initrd, bs, err,
			err_len) ||
	    !acpi_tables_write(g, 1) || !write_identity_map(g)) {
		if (!err[0])
			snprintf(err, err_len, "guest RAM too small for the boot information");
		return false;
	}
	bs->cr3 = IDMAP_PML4_GPA;
	return true;
}

bool loader_load(struct guest *g, const struct boot_module *m, const struct boot_module *env,
		 const struct boot_module *initrd, struct guest_boot_state *bs, char *err,
		 size_t err_len)
{
	const u8 *data = (const u8 *)m->start;
	struct guest_image img;
	struct mb1_module env_module;

	err[0] = 0;
	if (linux_is_bzimage(data, m->end - m->start))
		return load_linux(g, m, NULL, env, initrd, bs, err, err_len);
	if (!image_parse(data, m->end - m->start, &img, err, err_len) ||
	    !load_segments(g, data, &img, err, err_len))
		return false;
	if (linux_is_vmlinux(data, m->end - m->start))
		return load_linux(g, m, &img, env, initrd, bs, err, err_len);
	if (initrd) {
		snprintf(err, err_len, "initrd_for= is for Linux kernels, and this is a %s image",
			 image_format_name(img.format));
		return false;
	}
	if (env && !load_env(g, env, &img, &env_module, err, err_len))
		return false;
	if (!write_multiboot_info(g, env ? &env_module : NULL) || !acpi_tables_write(g, 1)) {
		snprintf(err, err_len, "guest RAM too small for the boot information");
		return false;
	}
	memset(bs, 0, sizeof(*bs));
	bs->rip = img.entry;
	if (img.format == IMAGE_ELF64) {
		if (!write_identity_map(g)) {
			snprintf(err, err_len, "guest RAM too small for the identity map");
			return false;
		}
		bs->long_mode = true;
		bs->cr3 = IDMAP_PML4_GPA;
		bs->rdi = MB1_INFO_GPA;
	} else if (img.format == IMAGE_MULTIBOOT) {
		bs->rax = MB1_BOOTLOADER_MAGIC;
		bs->rbx = MB1_INFO_GPA;
	}
	log_printf("hv", "%s: %s image, entry %#llx, %llu KiB at %#llx, %llu MiB RAM, %s", g->cfg.name,
		   image_format_name(img.format), (unsigned long long)img.entry,
		   (unsigned long long)((img.highest - img.lowest) >> 10),
		   (unsigned long long)img.lowest, (unsigned long long)(g->mem.size >> 20),
		   mmu_names[g->cfg.mmu]);
	return true;
}
