/*
 * Guests from start to finish: create one per module, run them round-robin
 * on every CPU that could turn VMX on (a guest that halts yields; when all
 * wait, the CPUs wait for the earliest timer), and print a per-guest report
 * on the boot CPU when all have ended. A guest that misbehaves ends alone;
 * the others keep running.
 *
 * Several CPUs share one run queue (every guest's vCPUs, in guest order,
 * under run_lock, taken round-robin from next_vcpu); a vCPU runs on one CPU
 * at a time, holding its own lock for the whole slice, and two vCPUs of a
 * guest may run at once on two CPUs. After each slice a vCPU leaves that CPU
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
#include "devices/lapic.h"
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
/* The run queue: every live guest's vCPUs; their states, running_on and
 * next_vcpu (round-robin) are under run_lock. */
static struct vcpu *runq[MAX_GUESTS * GUEST_MAX_VCPUS];
static int runq_len;
static spinlock_t run_lock;
static int next_vcpu;
static u16 next_vpid = 1;   /* VPID 0 is the host's (SDM 26.2.1.1) */
static u32 kicks;           /* bumped by every kick: an idle CPU looks again */
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
	for (int i = 0; i < g->nr_vcpus; i++)
		vcpu_destroy(&g->vcpu[i]);
	if (g->mmu)
		g->mmu->destroy(g);
	devices_free(g);
	for (int i = 0; i < g->nr_vcpus; i++)
		fpu_free_guest(&g->vcpu[i]);
	guest_memory_free(g);
}

/* Each vCPU's own state before its VMCS exists: vCPU 0 starts (the loader's
 * state), the others wait for INIT and SIPI (SDM Vol. 3A 9.4.4). */
static void init_vcpus(struct guest *g)
{
	g->nr_vcpus = (int)g->cfg.vcpus;
	for (int i = 0; i < g->nr_vcpus; i++) {
		struct vcpu *v = &g->vcpu[i];

		v->g = g;
		v->index = i;
		v->state = i ? VCPU_WAIT_SIPI : VCPU_RUNNABLE;
		v->running_on = -1;
		v->last_cpu = -1;
		v->dr6 = 0xffff0ff0;  /* DR6's reset value (SDM 18.2.3) */
	}
}

static void kick_vcpu(struct vcpu *v);

static bool create_guest(const struct boot_info *bi, const struct boot_module *m, int index)
{
	struct guest *g = &guests[guest_count];
	struct guest_boot_state bs;
	char err[256];

	memset(g, 0, sizeof(*g));
	g->id = index;
	g->on_end = report_end;
	g->kick = kick_vcpu;
	if (!loader_configure(m, index, &g->cfg, err, sizeof(err))) {
		pr_err("module %d ('%s'): %s", index, m->cmdline, err);
		return false;
	}
	init_vcpus(g);
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
	for (int i = 0; i < g->nr_vcpus; i++) {
		struct vcpu *v = &g->vcpu[i];

		v->vpid = next_vpid++;
		fpu_init_guest(v);
		msr_init_guest(v);
		if (!vcpu_create(v, &bs)) {
			pr_err("%s: cannot set up vCPU %d (out of memory or bad initial paging "
			       "state)", g->cfg.name, i);
			destroy_guest(g);
			return false;
		}
	}
	if (!ageing_init(g)) {
		pr_err("%s: no memory for its page-ageing state", g->cfg.name);
		destroy_guest(g);
		return false;
	}
	g->state = GUEST_LIVE;
	g->waiting_since = rdtsc();  /* its clock starts when it first runs */
	for (int i = 0; i < g->nr_vcpus; i++)
		runq[runq_len++] = &g->vcpu[i];
	guest_count++;
	return true;
}

/* Something for a sleeping vCPU to take now: an interrupt, an NMI, an INIT;
 * for one waiting for a SIPI, only a SIPI (or an INIT, which it absorbs). */
static bool vcpu_wakes(struct vcpu *v)
{
	if (lapic_start_pending(v))
		return true;
	if (v->state == VCPU_WAIT_SIPI)
		return false;
	if (devices_nmi_pending(v))
		return true;
	return !(v->state == VCPU_HALTED && v->halted_if_off) && devices_wakes_cpu(v);
}

/* guest->kick: a sleeping vCPU is found by the next look at the run queue
 * (an idle CPU looks at once); one running on another CPU gets a host IPI,
 * which makes it exit (external-interrupt exiting). */
static void kick_vcpu(struct vcpu *v)
{
	int cpu = __atomic_load_n(&v->running_on, __ATOMIC_ACQUIRE);
	struct vcpu *sender = this_cpu()->current_vmcs;

	__atomic_add_fetch(&kicks, 1, __ATOMIC_RELEASE);
	if (cpu >= 0 && cpu != (int)this_cpu_index())
		host_apic_send_fixed(cpu_locals[cpu].apic_id, HOST_KICK_VECTOR);
	/* A vCPU that wakes a sibling with no CPU yields at once: the sender
	 * usually waits for the answer (an IPI handler, a started AP), which
	 * would otherwise come a whole slice later when they share one CPU. */
	else if (cpu < 0 && sender && sender != v && sender->g == v->g &&
		 sender->running_on == (int)this_cpu_index())
		sender->yield_soon = true;
}

/*
 * A halted vCPU becomes runnable once an interrupt is pending for it. While
 * none of its guest's vCPUs runs, the guest's clock is wound back to the
 * moment the timer was due (we may notice a whole slice of another guest
 * later), so it sees the tick on time and never the scheduling latency; from
 * then on it waits for the CPU, which its clock does not see either
 * (vcpu_run_slice). Under run_lock, with v's lock held.
 */
static bool wake_if_pending(struct vcpu *v)
{
	struct guest *g = v->g;
	u64 now = rdtsc(), due = devices_next_event(v);
	bool alone = g->vcpus_running == 0;

	if (v->state == VCPU_WAIT_SIPI)
		return vcpu_wakes(v);
	if (alone && due && due - g->tsc_offset < now)
		g->tsc_offset -= now - (due - g->tsc_offset);
	devices_update(v, now + g->tsc_offset);
	if (vcpu_wakes(v)) {
		v->state = VCPU_RUNNABLE;
		if (alone)
			g->waiting_since = now;
	}
	return v->state == VCPU_RUNNABLE;
}

/* Nothing runs and no vCPU is runnable: end the guests none of whose vCPUs
 * can ever wake (halted with no timer armed, or waiting for a SIPI no one
 * can send), and return the host time of the earliest timer (0: none).
 * Under run_lock. */
static u64 earliest_event(void)
{
	u64 earliest = 0;

	for (int i = 0; i < guest_count; i++) {
		struct guest *g = &guests[i];
		bool can_wake = false;

		if (g->state == GUEST_DONE)
			continue;
		for (int k = 0; k < g->nr_vcpus; k++) {
			struct vcpu *v = &g->vcpu[k];
			u64 next = v->state == VCPU_HALTED ? devices_next_event(v) : 0;

			if (!next)
				continue;
			can_wake = true;
			next -= g->tsc_offset;  /* to host time */
			if (!earliest || next < earliest)
				earliest = next;
		}
		if (!can_wake)
			guest_end(g, 0, g->nr_vcpus > 1 ? "every vCPU halted with no timer armed or "
				  "waits for a SIPI: it can never wake" :
				  "halted with no timer armed: it can never wake");
	}
	return earliest;
}

/*
 * Registers the hypervisor never uses stay loaded with the running vCPU's
 * values and are exchanged only when another vCPU gets the CPU: FPU/SSE/AVX,
 * the syscall MSRs, and DR0-3/DR6 (VM exits save only DR7, SDM 28.3.1).
 * to NULL: only save from's (it leaves this CPU).
 */
static void switch_vcpu_state(struct vcpu *from, struct vcpu *to)
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
 * Under run_lock: the next vCPU for this CPU, round-robin, claimed (its lock
 * taken, running_on set); NULL if none can run now. *live: a guest has not
 * ended; *busy: a vCPU is on another CPU or locked by a reclaim.
 */
static struct vcpu *pick_vcpu(bool *live, bool *busy)
{
	for (int n = 0; n < runq_len; n++) {
		int at = (next_vcpu + n) % runq_len;
		struct vcpu *c = runq[at];

		if (c->g->state == GUEST_DONE)
			continue;
		*live = true;
		if (c->running_on >= 0 || !spin_trylock(&c->lock)) {
			*busy = true;
			continue;
		}
		if (c->state == VCPU_RUNNABLE || wake_if_pending(c)) {
			c->running_on = (int)this_cpu_index();
			c->g->vcpus_running++;
			next_vcpu = (at + 1) % runq_len;
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
		u32 seen = __atomic_load_n(&kicks, __ATOMIC_ACQUIRE);
		struct vcpu *v;

		spin_lock(&run_lock);
		v = pick_vcpu(&live, &busy);
		if (!v && live && !busy)
			earliest = earliest_event();
		spin_unlock(&run_lock);
		if (!live)
			return;
		if (!v) {
			/* Another CPU may hand a vCPU back any moment: look again soon. */
			for (int i = 0; busy && i < 256; i++)
				pause();
			while (!busy && earliest && rdtsc() < earliest &&
			       __atomic_load_n(&kicks, __ATOMIC_ACQUIRE) == seen)
				pause();
			continue;
		}
		if (v != me->loaded_vcpu) {
			switch_vcpu_state(me->loaded_vcpu, v);
			me->loaded_vcpu = v;
		}
		v->g->slices_on[me->index]++;
		vcpu_run_slice(v, slice);
		if (several_cpus) {
			switch_vcpu_state(v, NULL);
			me->loaded_vcpu = NULL;
			vcpu_put(v);
		}
		spin_lock(&run_lock);
		v->running_on = -1;
		v->g->vcpus_running--;
		spin_unlock(&v->lock);
		spin_unlock(&run_lock);
	}
}

/* What each AP does once the guests exist: the host FPU set-up the first CPU
 * made (guests_run), VMX on, then its share of the run. */
static void ap_run(void)
{
	host_apic_enable();
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
	host_apic_enable();
	features_init();
	for (int i = 0; several_cpus && i < runq_len; i++)
		vcpu_put(runq[i]);  /* created here; any CPU may run them */
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
