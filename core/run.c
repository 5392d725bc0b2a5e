/*
 * Guests from start to finish: create one per module, run them round-robin
 * on every CPU that could turn VMX on (a guest that halts yields; when all
 * wait, the CPUs wait for the earliest timer), and print a per-guest report
 * on the boot CPU when all have ended. A guest that misbehaves ends alone;
 * the others keep running.
 *
 * Several CPUs share one run queue (the guests[] array under run_lock, taken
 * round-robin from next_guest); a guest runs on one CPU at a time, holding
 * its own lock for the whole slice. After each slice it leaves that CPU
 * completely (its register state saved, its VMCS cleared), so any CPU may
 * take it next. With one CPU nothing moves and state stays loaded lazily.
 */
#include <stdio.h>
#include <string.h>
#include "core/run.h"
#include "core/loader.h"
#include "core/stats.h"
#include "vmx/ageing.h"
#include "vmx/emulate.h"
#include "vmx/exit.h"
#include "vmx/features.h"
#include "vmx/mmu_ept.h"
#include "vmx/mmu_shadow.h"
#include "vmx/msr.h"
#include "vmx/vcpu.h"
#include "vmx/vmx.h"
#include "devices/devices.h"
#include "devices/platform.h"
#include "devices/uart.h"
#include "guest/fpu.h"
#include "guest/memory.h"
#include "arch/x86/emulate.h"
#include "arch/x86/cpu.h"
#include "arch/x86/log.h"
#include "arch/x86/percpu.h"
#include "arch/x86/smp.h"
#include "arch/x86/spinlock.h"
#include "lib/config.h"

static struct guest guests[MAX_GUESTS];
static int guest_count;
static int failed_to_load;
/* The run queue: guest states, running_on and next_guest (round-robin). */
static spinlock_t run_lock;
static int next_guest;
static bool several_cpus;   /* guests move between CPUs: no lazy state */
static u32 aps_done;        /* APs that left the run (or never joined it) */

/* Memory virtualization by the guest's mmu= option (enum guest_mmu). */
static const struct mmu_ops *const mmu_sides[] = {
	[MMU_EPT] = &ept_mmu_ops,
	[MMU_SHADOW] = &shadow_mmu_ops,
};

/* guest_end() calls this: whatever the guest printed last, why it ended and,
 * when it was killed, its last exits. */
static void report_end(struct guest *g)
{
	uart_flush(g);
	log_printf("hv", "%s: ended: %s (status %u)", g->cfg.name, g->end_reason, g->exit_status);
	if (g->exit_status == 0)
		vmx_print_recent_exits(g);
}

/* The environment (or initrd) module for the guest called name, if any. */
static const struct boot_module *find_companion(const struct boot_info *bi, const char *name,
						enum companion_kind want)
{
	for (int i = 0; i < bi->module_count; i++) {
		const char *target;
		enum companion_kind kind;
		size_t len = loader_companion_target(&bi->modules[i], &target, &kind);

		if (len && kind == want && len == strlen(name) && !strncmp(target, name, len))
			return &bi->modules[i];
	}
	return NULL;
}

/* env_for= and initrd_for= modules must name a guest that exists; returns how many do not. */
static int check_companion_modules(const struct boot_info *bi)
{
	int bad = 0;

	for (int i = 0; i < bi->module_count; i++) {
		const char *target;
		enum companion_kind kind;
		size_t len = loader_companion_target(&bi->modules[i], &target, &kind);
		bool found = false;

		for (int k = 0; len && k < guest_count && !found; k++)
			found = strlen(guests[k].cfg.name) == len &&
				!strncmp(guests[k].cfg.name, target, len);
		if (len && !found) {
			pr_err("module %d: %s=%.*s names no guest", i, loader_companion_option(kind),
			       (int)len, target);
			bad++;
		}
	}
	return bad;
}

static void destroy_guest(struct guest *g)
{
	ageing_destroy(g);
	vcpu_destroy(g);
	if (g->mmu)
		g->mmu->destroy(g);
	devices_free(g);
	fpu_free_guest(g);
	guest_memory_free(g);
}

static bool create_guest(const struct boot_info *bi, const struct boot_module *m, int index)
{
	struct guest *g = &guests[guest_count];
	struct guest_boot_state bs;
	char err[256];

	memset(g, 0, sizeof(*g));
	g->id = index;
	g->on_end = report_end;
	if (!loader_configure(m, index, &g->cfg, err, sizeof(err))) {
		pr_err("module %d ('%s'): %s", index, m->cmdline, err);
		return false;
	}
	if (!guest_memory_init(g)) {
		pr_err("%s: not enough host memory for %llu MiB of guest RAM", g->cfg.name,
		       (unsigned long long)(g->cfg.mem >> 20));
		destroy_guest(g);
		return false;
	}
	if (!devices_init(g)) {
		pr_err("%s: no memory for its devices", g->cfg.name);
		destroy_guest(g);
		return false;
	}
	if (!loader_load(g, m, find_companion(bi, g->cfg.name, COMPANION_ENV),
			 find_companion(bi, g->cfg.name, COMPANION_INITRD), &bs, err, sizeof(err))) {
		pr_err("%s: cannot load module %d: %s", g->cfg.name, index, err);
		destroy_guest(g);
		return false;
	}
	g->mmu = mmu_sides[g->cfg.mmu];
	if (!g->mmu->init(g)) {  /* it says why */
		destroy_guest(g);
		return false;
	}
	g->vpid = (u16)(guest_count + 1);
	g->dr6 = 0xffff0ff0;  /* DR6's reset value (SDM 18.2.3) */
	fpu_init_guest(g);
	msr_init_guest(g);
	if (!vcpu_create(g, &bs) || !ageing_init(g)) {
		pr_err("%s: cannot set up its vCPU (out of memory or bad initial paging state)",
		       g->cfg.name);
		destroy_guest(g);
		return false;
	}
	g->state = GUEST_RUNNABLE;
	g->running_on = -1;
	g->waiting_since = rdtsc();  /* its clock starts when it first runs */
	guest_count++;
	return true;
}

/*
 * A halted guest becomes runnable once an interrupt is pending for it. Its
 * clock is wound back to the moment its timer was due (we may notice a
 * whole slice of another guest later), so it sees the tick on time and never
 * the scheduling latency; from then on it waits for the CPU, which its
 * clock does not see either (vcpu_run_slice).
 */
static bool wake_if_pending(struct guest *g)
{
	u64 now = rdtsc(), due = devices_next_event(g);

	if (due && due - g->tsc_offset < now)
		g->tsc_offset -= now - (due - g->tsc_offset);
	devices_update(g, now + g->tsc_offset);
	if (devices_wakes_cpu(g)) {
		g->state = GUEST_RUNNABLE;
		g->waiting_since = now;
	}
	return g->state == GUEST_RUNNABLE;
}

/* All live guests are halted (none runs): end those that can never wake, and
 * return the host time of the earliest timer (0: none). Under run_lock. */
static u64 earliest_event(void)
{
	u64 earliest = 0;

	for (int i = 0; i < guest_count; i++) {
		struct guest *g = &guests[i];
		u64 next;

		if (g->state != GUEST_HALTED)
			continue;
		next = devices_next_event(g);
		if (!next) {
			guest_end(g, 0, "halted with no timer armed: it can never wake");
			continue;
		}
		next -= g->tsc_offset;  /* to host time */
		if (!earliest || next < earliest)
			earliest = next;
	}
	return earliest;
}

/*
 * Registers the hypervisor never uses stay loaded with the running guest's
 * values and are exchanged only when another guest gets the CPU: FPU/SSE/AVX,
 * the syscall MSRs, and DR0-3/DR6 (VM exits save only DR7, SDM 28.3.1).
 * to NULL: only save from's (it leaves this CPU).
 */
static void switch_guest_state(struct guest *from, struct guest *to)
{
	fpu_switch(from, to);
	msr_switch(from, to);
	if (from) {
		from->dr[0] = read_dr0();
		from->dr[1] = read_dr1();
		from->dr[2] = read_dr2();
		from->dr[3] = read_dr3();
		from->dr6 = read_dr6();
	}
	if (!to)
		return;
	write_dr0(to->dr[0]);
	write_dr1(to->dr[1]);
	write_dr2(to->dr[2]);
	write_dr3(to->dr[3]);
	write_dr6(to->dr6);
}

/*
 * Under run_lock: the next guest for this CPU, round-robin, claimed (its lock
 * taken, running_on set); NULL if none can run now. *live: a guest has not
 * ended; *busy: a guest is on another CPU or locked by a reclaim.
 */
static struct guest *pick_guest(bool *live, bool *busy)
{
	for (int n = 0; n < guest_count; n++) {
		struct guest *c = &guests[(next_guest + n) % guest_count];

		if (c->state == GUEST_DONE)
			continue;
		*live = true;
		if (c->running_on >= 0 || !spin_trylock(&c->lock)) {
			*busy = true;
			continue;
		}
		if (c->state == GUEST_RUNNABLE || wake_if_pending(c)) {
			c->running_on = (int)this_cpu_index();
			next_guest = (int)(c - guests + 1) % guest_count;
			return c;
		}
		spin_unlock(&c->lock);
	}
	return NULL;
}

/* One CPU's share of the run: until every guest has ended. */
static void run_cpu(void)
{
	u64 slice = hv_config.slice_ms * machine_timing_khz();
	struct cpu_local *me = this_cpu();

	for (;;) {
		bool live = false, busy = false;
		u64 earliest = 0;
		struct guest *g;

		spin_lock(&run_lock);
		g = pick_guest(&live, &busy);
		if (!g && live && !busy)
			earliest = earliest_event();
		spin_unlock(&run_lock);
		if (!live)
			return;
		if (!g) {
			/* Another CPU may hand a guest back any moment: look again soon. */
			for (int i = 0; busy && i < 256; i++)
				pause();
			while (!busy && earliest && rdtsc() < earliest)
				pause();
			continue;
		}
		if (g != me->loaded_guest) {
			switch_guest_state(me->loaded_guest, g);
			me->loaded_guest = g;
		}
		g->slices_on[me->index]++;
		vcpu_run_slice(g, slice);
		if (several_cpus) {
			switch_guest_state(g, NULL);
			me->loaded_guest = NULL;
			vcpu_put(g);
		}
		spin_lock(&run_lock);
		g->running_on = -1;
		spin_unlock(&g->lock);
		spin_unlock(&run_lock);
	}
}

/* What each AP does once the guests exist: the host FPU set-up the first CPU
 * made (guests_run), VMX on, then its share of the run. */
static void ap_run(void)
{
	fpu_init_cpu();
	if (!emulate_init_cpu())
		pr_err("CPU %u: no memory for its emulator context; it runs no guests",
		       this_cpu_index());
	else if (vmx_init_cpu())
		run_cpu();
	__atomic_add_fetch(&aps_done, 1, __ATOMIC_RELEASE);
}

static void print_emulated(struct guest *g)
{
	char line[200];
	size_t used = 0;

	for (int k = 0; k < X86_NR_INSN_KINDS && used < sizeof(line); k++)
		if (g->emulated[k])
			used += snprintf(line + used, sizeof(line) - used, " %s %llu",
					 x86_insn_kind_name((enum x86_insn_kind)k),
					 (unsigned long long)g->emulated[k]);
	if (used)
		log_printf("hv", "summary %s: emulated:%s", g->cfg.name, line);
}

/* With several CPUs: where the guest ran (one CPU prints nothing, as before). */
static void print_cpus(struct guest *g)
{
	char line[200];
	size_t used = 0;

	for (u32 c = 0; several_cpus && c < smp_cpu_count() && used < sizeof(line); c++)
		used += snprintf(line + used, sizeof(line) - used, " %u:%llu", c,
				 (unsigned long long)g->slices_on[c]);
	if (used)
		log_printf("hv", "summary %s: slices per CPU:%s", g->cfg.name, line);
}

static void print_summary(void)
{
	for (int i = 0; i < guest_count; i++) {
		struct guest *g = &guests[i];
		u64 total = 0;

		for (int r = 0; r < EXIT_REASON_COUNT; r++)
			total += g->exit_count[r];
		log_printf("hv", "summary %s: %s, status %u (%s), %llu MiB, %s, %llu exits, "
			   "%llu interrupts injected, %llu unassigned port accesses",
			   g->cfg.name, g->exit_status == 1 ? "PASS" : "FAIL", g->exit_status,
			   g->end_reason, (unsigned long long)(g->mem.size >> 20),
			   g->mmu->name, (unsigned long long)total,
			   (unsigned long long)g->injected_irqs, (unsigned long long)g->unhandled_io);
		stats_print(g);
		ageing_report(g);
		print_cpus(g);
		if (!hv_config.summary)
			continue;
		if (g->mmu->summary)
			g->mmu->summary(g);
		print_emulated(g);
		for (int r = 0; r < EXIT_REASON_COUNT; r++)
			if (g->exit_count[r])
				log_printf("hv", "summary %s: exit %-2d %-20s %8llu  avg %llu ticks",
					   g->cfg.name, r, vmx_exit_reason_name((u32)r),
					   (unsigned long long)g->exit_count[r],
					   (unsigned long long)(g->exit_tsc[r] / g->exit_count[r]));
	}
}

enum run_status guests_run(const struct boot_info *bi)
{
	bool all_passed;

	if (!vmx_init())
		return cpuid(1, 0).ecx & (1u << 5) ? RUN_HV_ERROR : RUN_NO_VMX;
	vmx_print_capabilities();
	fpu_init_host();
	if (bi->module_count == 0) {
		pr_err("no guest modules: add 'module2 /path/kernel.elf name=... -- args' lines");
		return RUN_HV_ERROR;
	}
	for (int i = 0; i < bi->module_count; i++) {
		const char *target;
		enum companion_kind kind;

		if (!loader_companion_target(&bi->modules[i], &target, &kind) &&
		    !create_guest(bi, &bi->modules[i], i))
			failed_to_load++;
	}
	failed_to_load += check_companion_modules(bi);
	if (bi->modules_refused) {
		pr_err("%d module(s) refused by the boot information (see the warnings above)",
		       bi->modules_refused);
		failed_to_load += bi->modules_refused;
	}
	several_cpus = smp_cpu_count() > 1;
	features_init();
	for (int i = 0; several_cpus && i < guest_count; i++)
		vcpu_put(&guests[i]);  /* created here; any CPU may run them */
	smp_release_aps(ap_run);
	run_cpu();
	while (__atomic_load_n(&aps_done, __ATOMIC_ACQUIRE) < smp_cpu_count() - 1)
		pause();
	print_summary();
	for (size_t i = 0; i < ARRAY_SIZE(mmu_sides); i++)
		if (mmu_sides[i]->run_report)
			mmu_sides[i]->run_report();
	all_passed = !failed_to_load;
	for (int i = 0; i < guest_count; i++) {
		all_passed &= guests[i].exit_status == 1;
		destroy_guest(&guests[i]);
	}
	if (failed_to_load)
		pr_err("%d module(s) could not be loaded as guests", failed_to_load);
	return all_passed ? RUN_PASS : RUN_GUEST_FAILED;
}
