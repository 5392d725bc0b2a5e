/*
 * Per-guest statistics at the end of a run, as machine-readable lines for
 * benchmarks and tools ("stats NAME GROUP key=value ..."), one group per
 * line and continued on the next when long:
 *   run      status, mmu, memory, exits, guest TSC ticks to finish, host ticks in the guest
 *   exits    count per exit reason (names in lower case with '_')
 *   ticks    average hypervisor ticks per exit, per reason
 *   shadow   shadow MMU counters (from the guest's struct mmu_ops: mmu=shadow only)
 *   emulated emulated instructions by kind
 */
#include <stdio.h>
#include <string.h>
#include "core/stats.h"
#include "vmx/exit.h"
#include "vmx/mmu.h"
#include "arch/x86/emulate.h"
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

static void kv_add_cb(void *ctx, const char *key, u64 value)
{
	kv_add(ctx, key, value);
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
	u64 total = 0;
	char key[48];

	for (int r = 0; r < EXIT_REASON_COUNT; r++)
		total += g->exit_count[r];
	kv_add(&l, "status", g->exit_status);
	kv_add(&l, "shadow", !g->mmu->uses_ept);
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

	if (g->mmu->stats) {
		l.group = g->mmu->name;
		g->mmu->stats(g, kv_add_cb, &l);
		kv_flush(&l);
	}

	l.group = "emulated";
	for (int k = 0; k < X86_NR_INSN_KINDS; k++)
		if (g->emulated[k])
			kv_add(&l, x86_insn_kind_name((enum x86_insn_kind)k), g->emulated[k]);
	kv_flush(&l);
}
