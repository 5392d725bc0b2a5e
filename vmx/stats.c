/*
 * Per-guest statistics at the end of a run, as machine-readable lines for
 * benchmarks and tools ("stats NAME GROUP key=value ..."), one group per
 * line and continued on the next when long:
 *   run      status, mmu, memory, exits, guest TSC ticks to finish, host ticks in the guest
 *   exits    count per exit reason (names in lower case with '_')
 *   ticks    average hypervisor ticks per exit, per reason
 *   shadow   shadow MMU counters (mmu=shadow only)
 *   emulated emulated instructions by kind
 */
#include <stdio.h>
#include <string.h>
#include "vmx/mmu.h"
#include "vmx/exit.h"
#include "arch/x86/emulate.h"
#include "vmx/vmx.h"
#include "arch/x86/log.h"

struct kv_line {
	const char *name, *group;
	char buf[240];
	size_t len;
};

static void kv_flush(struct kv_line *l)
{
	if (l->len)
		log_printf("hv", "stats %s %s%s", l->name, l->group, l->buf);
	l->len = 0;
}

static void kv_add(struct kv_line *l, const char *key, u64 value)
{
	char item[64];
	int n = snprintf(item, sizeof(item), " %s=%llu", key, (unsigned long long)value);

	if (n <= 0)
		return;
	if (l->len + (size_t)n >= sizeof(l->buf))
		kv_flush(l);
	memcpy(l->buf + l->len, item, (size_t)n + 1);
	l->len += (size_t)n;
}

/* "I/O instruction" -> "i_o_instruction" */
static void slug(char *out, size_t size, const char *name)
{
	size_t i = 0;

	for (; *name && i + 1 < size; name++)
		out[i++] = (*name >= 'A' && *name <= 'Z') ? (char)(*name - 'A' + 'a') :
			   ((*name >= 'a' && *name <= 'z') || (*name >= '0' && *name <= '9')) ?
			   *name : '_';
	out[i] = 0;
}

void stats_print(struct guest *g)
{
	struct kv_line l = { .name = g->cfg.name, .group = "run" };
	const struct shadow_stats *st = guest_shadow_stats(g);
	u64 total = 0;
	char key[48];

	for (int r = 0; r < EXIT_REASON_COUNT; r++)
		total += g->exit_count[r];
	kv_add(&l, "status", g->exit_status);
	kv_add(&l, "shadow", g->cfg.mmu == MMU_SHADOW);
	kv_add(&l, "mem_mib", g->mem.size >> 20);
	kv_add(&l, "exits", total);
	kv_add(&l, "guest_tsc", g->guest_tsc_end - g->guest_tsc_start);
	kv_add(&l, "run_ticks", g->run_tsc);
	kv_add(&l, "irqs", g->injected_irqs);
	kv_flush(&l);

	l.group = "exits";
	for (int r = 0; r < EXIT_REASON_COUNT; r++) {
		if (!g->exit_count[r])
			continue;
		slug(key, sizeof(key), vmx_exit_reason_name((u32)r));
		kv_add(&l, key, g->exit_count[r]);
	}
	kv_flush(&l);
	l.group = "ticks";
	for (int r = 0; r < EXIT_REASON_COUNT; r++) {
		if (!g->exit_count[r])
			continue;
		slug(key, sizeof(key), vmx_exit_reason_name((u32)r));
		kv_add(&l, key, g->exit_tsc[r] / g->exit_count[r]);
	}
	kv_flush(&l);

	if (st) {
		u64 mmu_ticks, unprotects;

		shadow_guest_counters(g, &mmu_ticks, &unprotects);
		l.group = "shadow";
		kv_add(&l, "faults", st->faults);
		kv_add(&l, "faults_fixed", st->faults_fixed);
		kv_add(&l, "faults_injected", st->faults_injected);
		kv_add(&l, "faults_emulate", st->faults_emulate);
		kv_add(&l, "guest_writes", st->guest_writes);
		kv_add(&l, "sptes_updated", st->sptes_updated);
		kv_add(&l, "pages_created", st->pages_created);
		kv_add(&l, "pages_zapped", st->pages_zapped);
		kv_add(&l, "roots_created", st->roots_created);
		kv_add(&l, "roots_reused", st->roots_reused);
		kv_add(&l, "zap_all", st->zap_all);
		kv_add(&l, "evictions", st->evictions);
		kv_add(&l, "evict_examined", st->evict_examined);
		kv_add(&l, "reserve_failures", st->reserve_failures);
		kv_add(&l, "flood_checks", st->flood_checks);
		kv_add(&l, "unshadowed_flood", st->unshadowed_flood);
		kv_add(&l, "unshadowed_pattern", st->unshadowed_pattern);
		kv_add(&l, "unshadow_false_positive", st->unshadow_false_positive);
		kv_add(&l, "unprotects", unprotects);
		kv_add(&l, "mmu_ticks", mmu_ticks);
		kv_flush(&l);
	}

	l.group = "emulated";
	for (int k = 0; k < X86_NR_INSN_KINDS; k++)
		if (g->emulated[k])
			kv_add(&l, x86_insn_kind_name((enum x86_insn_kind)k), g->emulated[k]);
	kv_flush(&l);
}
