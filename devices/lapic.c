/*
 * A local xAPIC at 0xfee00000 (SDM Vol. 3A ch. 11), one per vCPU: ID (the
 * vCPU's index), version, TPR/PPR, EOI, SVR, ISR/IRR/TMR, ESR, ICR (fixed,
 * lowest-priority, NMI, INIT and SIPI IPIs to the guest's vCPUs by physical
 * or logical destination and the self/all/all-but-self shorthands), the LVT,
 * and the timer in one-shot, periodic and TSC-deadline modes. The timer
 * counts at the guest's TSC rate divided by the divide configuration.
 * Ticks that cannot change what the guest sees now (masked, or its vector
 * still waiting in IRR, where further ticks coalesce as on a real APIC) are
 * not events: they are folded in when the guest next looks.
 * The 8259 PIC reaches the CPU through LINT0 in ExtINT mode, as a PC's BIOS
 * leaves it.
 */
#include <string.h>
#include "devices/lapic.h"
#include "arch/x86/log.h"

#define APIC_ID 0x20
#define APIC_VERSION 0x30
#define APIC_TPR 0x80
#define APIC_APR 0x90
#define APIC_PPR 0xa0
#define APIC_EOI 0xb0
#define APIC_LDR 0xd0
#define APIC_DFR 0xe0
#define APIC_SVR 0xf0
#define APIC_ISR 0x100
#define APIC_TMR 0x180
#define APIC_IRR 0x200
#define APIC_ESR 0x280
#define APIC_ICR_LOW 0x300
#define APIC_ICR_HIGH 0x310
#define APIC_LVT_TIMER 0x320
#define APIC_LVT_LAST 0x370
#define APIC_TIMER_INITIAL 0x380
#define APIC_TIMER_CURRENT 0x390
#define APIC_TIMER_DIVIDE 0x3e0

#define LVT_COUNT 6            /* timer, thermal, PMC, LINT0, LINT1, error */
#define LVT_MASKED BIT(16)
#define LVT_TIMER_MODE(v) (((v) >> 17) & 3)
#define TIMER_ONESHOT 0
#define TIMER_PERIODIC 1
#define TIMER_TSC_DEADLINE 2
#define SVR_ENABLED BIT(8)
#define DELIVERY_FIXED 0
#define DELIVERY_LOWEST 1
#define DELIVERY_NMI 4
#define DELIVERY_INIT 5
#define DELIVERY_STARTUP 6
#define DELIVERY_EXTINT 7
#define ICR_LOGICAL BIT(11)
#define ICR_ASSERT BIT(14)
#define ICR_LEVEL BIT(15)
#define SHORT_SELF 1
#define SHORT_ALL 2
#define SHORT_ALL_BUT_SELF 3
#define ESR_SEND_ILLEGAL BIT(5)
#define LVT_LINT0 3

/* Each vCPU's APIC is the guest's lapic[its index]. */
static struct lapic_state *apic(const struct vcpu *v)
{
	return &v->g->dev->lapic[v->index];
}

static int lvt_index(u32 reg)
{
	return (int)((reg - APIC_LVT_TIMER) >> 4);
}

void lapic_reset(struct vcpu *v)
{
	struct lapic_state *a = apic(v);

	memset(a, 0, sizeof(*a));
	a->id = (u32)v->index;
	a->svr = 0xff;
	a->dfr = 0xffffffff;
	for (int i = 0; i < LVT_COUNT; i++)
		a->lvt[i] = LVT_MASKED;
	/* What a PC BIOS leaves: the 8259 routed through LINT0 as ExtINT. */
	a->lvt[LVT_LINT0] = DELIVERY_EXTINT << 8;
	a->enabled = true;
}

static int highest_bit(const u32 *bits)
{
	for (int w = 7; w >= 0; w--)
		if (bits[w])
			return w * 32 + 31 - __builtin_clz(bits[w]);
	return -1;
}

static void set_bit(u32 *bits, int v) { bits[v / 32] |= 1u << (v % 32); }
static void clear_bit(u32 *bits, int v) { bits[v / 32] &= ~(1u << (v % 32)); }
static bool test_bit(const u32 *bits, int v) { return bits[v / 32] & (1u << (v % 32)); }

/* Processor priority (SDM 11.8.3.1): the higher of TPR and the in-service class. */
static u32 ppr(const struct lapic_state *a)
{
	int isr = highest_bit(a->isr);
	u32 isr_class = isr < 0 ? 0 : (u32)isr & 0xf0;

	return (a->tpr & 0xf0) >= isr_class ? a->tpr & 0xff : isr_class;
}

static bool software_enabled(const struct lapic_state *a)
{
	return a->enabled && (a->svr & SVR_ENABLED);
}

static void accept(struct lapic_state *a, int vector)
{
	if (vector < 16) {
		a->esr |= BIT(6);  /* illegal vector received */
		return;
	}
	set_bit(a->irr, vector);
}

int lapic_pending_vector(struct vcpu *v)
{
	struct lapic_state *a = apic(v);
	int val = highest_bit(a->irr);

	if (!software_enabled(a) || val < 0 || ((u32)val & 0xf0) <= (ppr(a) & 0xf0))
		return -1;
	return val;
}

void lapic_ack(struct vcpu *v, int vector)
{
	clear_bit(apic(v)->irr, vector);
	set_bit(apic(v)->isr, vector);
}

bool lapic_accepts_pic(struct vcpu *v)
{
	const struct lapic_state *a = apic(v);
	u32 lint0 = a->lvt[LVT_LINT0];

	/* A disabled APIC passes the 8259 straight through (SDM 11.4.3). */
	return !software_enabled(a) ||
	       (!(lint0 & LVT_MASKED) && ((lint0 >> 8) & 7) == DELIVERY_EXTINT);
}

/* ---- timer ------------------------------------------------------------------ */

static u32 divisor(const struct lapic_state *a)
{
	u32 d = (a->tdcr & 3) | ((a->tdcr >> 1) & 4);  /* bits 0, 1, 3 */

	return d == 7 ? 1 : 2u << d;
}

static void timer_arm(struct lapic_state *a, u64 now)
{
	a->timer_start = now;
	a->timer_deadline = a->tmict ? now + (u64)a->tmict * divisor(a) : 0;
}

void lapic_update(struct vcpu *v, u64 now)
{
	struct lapic_state *a = apic(v);
	u32 lvt = a->lvt[0];
	u64 due = LVT_TIMER_MODE(lvt) == TIMER_TSC_DEADLINE ? a->tsc_deadline : a->timer_deadline;

	if (!due || now < due)
		return;
	if (!(lvt & LVT_MASKED))
		accept(a, lvt & 0xff);
	if (LVT_TIMER_MODE(lvt) == TIMER_TSC_DEADLINE) {
		a->tsc_deadline = 0;
	} else if (LVT_TIMER_MODE(lvt) == TIMER_PERIODIC) {
		u64 period = (u64)a->tmict * divisor(a);

		a->timer_start = due + (now - due) / period * period;
		a->timer_deadline = a->timer_start + period;
	} else {
		a->timer_deadline = 0;
	}
}

u64 lapic_next_event(struct vcpu *v)
{
	const struct lapic_state *a = apic(v);
	u32 lvt = a->lvt[0];

	/* A masked tick, or one whose vector is still requested, changes
	 * nothing the guest could be woken or interrupted by. */
	if ((lvt & LVT_MASKED) || test_bit(a->irr, (int)(lvt & 0xff)))
		return 0;
	return LVT_TIMER_MODE(lvt) == TIMER_TSC_DEADLINE ? a->tsc_deadline : a->timer_deadline;
}

static u32 current_count(struct vcpu *v)
{
	struct guest *g = v->g;
	const struct lapic_state *a = apic(v);
	u64 now = guest_tsc(g);

	if (!a->timer_deadline || now >= a->timer_deadline)
		return 0;
	return (u32)((a->timer_deadline - now) / divisor(a));
}

int lapic_timer_vector(struct vcpu *v)
{
	return (int)(apic(v)->lvt[0] & 0xff);
}

u64 lapic_read_tsc_deadline(struct vcpu *v)
{
	struct guest *g = v->g;

	lapic_update(v, guest_tsc(g));  /* a deadline that has passed reads 0 */
	return apic(v)->tsc_deadline;
}

void lapic_write_tsc_deadline(struct vcpu *v, u64 val)
{
	/* Ignored unless the timer is in TSC-deadline mode (SDM 11.5.4.1). */
	if (LVT_TIMER_MODE(apic(v)->lvt[0]) == TIMER_TSC_DEADLINE)
		apic(v)->tsc_deadline = val;
}

u8 lapic_get_tpr(struct vcpu *v)
{
	return (u8)(apic(v)->tpr >> 4);
}

void lapic_set_tpr(struct vcpu *v, u8 cr8)
{
	apic(v)->tpr = (u32)(cr8 & 0xf) << 4;
}

/* ---- registers ---------------------------------------------------------------- */

static u32 read_reg(struct vcpu *v, u32 reg)
{
	struct lapic_state *a = apic(v);

	switch (reg) {
	case APIC_ID: return a->id << 24;
	case APIC_VERSION: return 0x14 | ((LVT_COUNT - 1) << 16);  /* integrated APIC */
	case APIC_TPR: return a->tpr;
	case APIC_APR: return 0;
	case APIC_PPR: return ppr(a);
	case APIC_LDR: return a->ldr;
	case APIC_DFR: return a->dfr;
	case APIC_SVR: return a->svr;
	case APIC_ESR: return a->esr;
	case APIC_ICR_LOW: return a->icr_low & ~BIT(12);  /* delivery never pending */
	case APIC_ICR_HIGH: return a->icr_high;
	case APIC_TIMER_INITIAL: return a->tmict;
	case APIC_TIMER_CURRENT: return current_count(v);
	case APIC_TIMER_DIVIDE: return a->tdcr;
	}
	if (reg >= APIC_ISR && reg < APIC_ISR + 0x80)
		return a->isr[(reg - APIC_ISR) >> 4];
	if (reg >= APIC_TMR && reg < APIC_TMR + 0x80)
		return a->tmr[(reg - APIC_TMR) >> 4];
	if (reg >= APIC_IRR && reg < APIC_IRR + 0x80)
		return a->irr[(reg - APIC_IRR) >> 4];
	if (reg >= APIC_LVT_TIMER && reg <= APIC_LVT_LAST && lvt_index(reg) < LVT_COUNT)
		return a->lvt[lvt_index(reg)];
	return 0;
}

/* Does the APIC of t take an IPI for destination dest (SDM 11.6.2)? */
static bool is_destination(const struct lapic_state *t, u32 dest, bool logical)
{
	if (!logical)  /* physical: its APIC ID, or 0xff for all */
		return dest == 0xff || dest == t->id;
	if (dest == 0xff)
		return true;
	if ((t->dfr >> 28) == 0xf)  /* flat model: a bit per CPU */
		return (t->ldr >> 24) & dest;
	/* cluster model: cluster in the high nibble, a bit per CPU in the low */
	return (t->ldr >> 28) == (dest >> 4) && ((t->ldr >> 24) & dest & 0xf);
}

/* An IPI reaching target t (SDM 11.6.1): returns false if t takes nothing. */
static bool receive(struct vcpu *t, u32 mode, u8 vector)
{
	struct lapic_state *a = apic(t);

	if (!a->enabled)
		return false;
	switch (mode) {
	case DELIVERY_FIXED:
	case DELIVERY_LOWEST:
		if (!software_enabled(a))  /* only INIT, NMI, SMI and SIPI then (11.4.7.2) */
			return false;
		accept(a, vector);
		return true;
	case DELIVERY_NMI:
		a->nmi_pending = true;  /* one more while one waits is lost (SDM 6.7.1) */
		return true;
	case DELIVERY_INIT:
		a->init_pending = true;
		a->sipi_pending = false;  /* a SIPI counts only after the INIT */
		return true;
	case DELIVERY_STARTUP:
		/* Only a CPU waiting for one takes it; the second SIPI of the
		 * INIT-SIPI-SIPI sequence, or one to a running CPU, is ignored
		 * (SDM 9.4.4.1). */
		if (a->sipi_pending || (t->state != VCPU_WAIT_SIPI && !a->init_pending))
			return false;
		a->sipi_pending = true;
		a->sipi_vector = vector;
		return true;
	}
	return false;  /* SMI, ExtINT and reserved modes: no receiver here */
}

/*
 * A write to ICR low sends the IPI it describes (SDM 11.6.1) to the vCPUs of
 * the guest its shorthand or destination names; each one is kicked (woken,
 * or made to exit if it runs on another CPU) so it takes it at once.
 * Lowest priority goes to the first APIC that matches.
 */
static void send_ipi(struct vcpu *v)
{
	struct guest *g = v->g;
	struct lapic_state *a = apic(v);
	u32 shorthand = (a->icr_low >> 18) & 3, mode = (a->icr_low >> 8) & 7;
	u32 dest = a->icr_high >> 24;
	u8 vector = (u8)a->icr_low;
	bool logical = a->icr_low & ICR_LOGICAL;

	/* INIT level de-assert only synchronises arbitration IDs (11.6.1). */
	if (mode == DELIVERY_INIT && !(a->icr_low & ICR_ASSERT) && (a->icr_low & ICR_LEVEL))
		return;
	/* A fixed or lowest-priority vector below 16 is not sent: "send
	 * illegal vector" in the sender's ESR (SDM 11.5.3). */
	if ((mode == DELIVERY_FIXED || mode == DELIVERY_LOWEST) && vector < 16) {
		a->esr |= ESR_SEND_ILLEGAL;
		return;
	}
	for (int i = 0; i < g->nr_vcpus; i++) {
		struct vcpu *t = &g->vcpu[i];
		bool hit = shorthand == SHORT_SELF ? t == v :
			   shorthand == SHORT_ALL ? true :
			   shorthand == SHORT_ALL_BUT_SELF ? t != v :
			   is_destination(apic(t), dest, logical);

		if (!hit || !receive(t, mode, vector))
			continue;
		if (t != v && g->kick)
			g->kick(t);
		if (mode == DELIVERY_LOWEST)
			break;
	}
}

bool lapic_take_init(struct vcpu *v)
{
	struct lapic_state *a = apic(v), keep;
	bool init;

	spin_lock(&v->g->dev_lock);
	init = a->init_pending;
	if (init) {
		/* INIT resets the APIC but for its ID (SDM 11.4.7.3); a SIPI that
		 * came after the INIT stays for the CPU now waiting for it. */
		keep = *a;
		lapic_reset(v);
		a->enabled = keep.enabled;
		a->id = keep.id;
		a->sipi_pending = keep.sipi_pending;
		a->sipi_vector = keep.sipi_vector;
	}
	spin_unlock(&v->g->dev_lock);
	return init;
}

int lapic_take_sipi(struct vcpu *v)
{
	struct lapic_state *a = apic(v);
	int vector = -1;

	spin_lock(&v->g->dev_lock);
	if (a->sipi_pending && !a->init_pending) {
		vector = a->sipi_vector;
		a->sipi_pending = false;
	}
	spin_unlock(&v->g->dev_lock);
	return vector;
}

bool lapic_start_pending(const struct vcpu *v)
{
	const struct lapic_state *a = apic(v);

	return a->init_pending || a->sipi_pending;
}

bool lapic_enabled(const struct vcpu *v)
{
	return apic(v)->enabled;
}

void lapic_set_enabled(struct vcpu *v, bool on)
{
	spin_lock(&v->g->dev_lock);
	apic(v)->enabled = on;
	spin_unlock(&v->g->dev_lock);
}

bool lapic_nmi_pending(struct vcpu *v)
{
	return apic(v)->nmi_pending;
}

void lapic_nmi_ack(struct vcpu *v)
{
	apic(v)->nmi_pending = false;
}

static void write_reg(struct vcpu *v, u32 reg, u32 val)
{
	struct guest *g = v->g;
	struct lapic_state *a = apic(v);

	switch (reg) {
	case APIC_ID: a->id = val >> 24; return;
	case APIC_TPR: a->tpr = val & 0xff; return;
	case APIC_EOI: {
		int v_isr = highest_bit(a->isr);

		if (v_isr >= 0)
			clear_bit(a->isr, v_isr);
		return;
	}
	case APIC_LDR: a->ldr = val & 0xff000000u; return;
	case APIC_DFR: a->dfr = val | 0x0fffffffu; return;
	case APIC_SVR:
		a->svr = val & 0x3ff;
		if (!(val & SVR_ENABLED))  /* software disable masks every LVT (SDM 11.4.7.2) */
			for (int i = 0; i < LVT_COUNT; i++)
				a->lvt[i] |= LVT_MASKED;
		return;
	case APIC_ESR: a->esr = 0; return;
	case APIC_ICR_HIGH: a->icr_high = val & 0xff000000u; return;
	case APIC_ICR_LOW: a->icr_low = val & ~BIT(12); send_ipi(v); return;
	case APIC_TIMER_INITIAL:
		a->tmict = val;
		if (LVT_TIMER_MODE(a->lvt[0]) != TIMER_TSC_DEADLINE)
			timer_arm(a, guest_tsc(g));
		return;
	case APIC_TIMER_DIVIDE: a->tdcr = val & 0xb; return;
	}
	if (reg >= APIC_LVT_TIMER && reg <= APIC_LVT_LAST && lvt_index(reg) < LVT_COUNT) {
		int i = lvt_index(reg);

		if (!(a->svr & SVR_ENABLED))
			val |= LVT_MASKED;
		if (i == 0 && LVT_TIMER_MODE(val) != LVT_TIMER_MODE(a->lvt[0])) {
			a->timer_deadline = 0;  /* a mode change disarms the timer */
			a->tsc_deadline = 0;
		}
		a->lvt[i] = val & (i == 0 ? 0x700ffu : 0x1a7ffu);
	}
}

/* MMIO handler: registers are 32 bits at 16-byte strides; narrower
 * accesses see part of one register. */
/*
 * Registers are 32 bits at 16-byte strides (SDM 11.4.1); other accesses are undefined.
 * As KVM does, a wider or misaligned read returns the register bytes it covers and zeros
 * elsewhere, and a write not within one register's low 4 bytes is dropped: a guest's
 * odd access is its own business, never a reason to end it.
 */
static void odd_access(struct vcpu *v, u64 offset, void *buf, unsigned len, bool write)
{
	struct guest *g = v->g;
	u8 *b = buf;

	if (write) {
		if (!apic(v)->odd_writes++)
			log_printf("hv", "%s: %u-byte local APIC write at offset %#llx ignored "
				   "(registers are 32-bit, 16-byte aligned)", g->cfg.name, len,
				   (unsigned long long)offset);
		return;
	}
	for (unsigned i = 0; i < len; i++) {
		u32 o = (u32)(offset + i);

		b[i] = (o & 0xf) < 4 ? (u8)(read_reg(v, o & ~0xfu) >> (8 * (o & 3))) : 0;
	}
}

bool lapic_mmio(struct vcpu *v, u64 offset, void *buf, unsigned len, bool write)
{
	struct guest *g = v->g;
	u32 reg = (u32)offset & ~0xfu, shift = ((u32)offset & 3) * 8, value;

	/* Globally disabled (IA32_APIC_BASE[11] = 0): the CPU acts as one without an APIC
	 * (SDM Vol. 3A 11.4.3) and the page is open bus, reads all-ones and writes go
	 * nowhere, as under KVM, whose APIC stops claiming the range. Never a reason to
	 * end the guest. */
	if (!apic(v)->enabled) {
		if (!write)
			memset(buf, 0xff, len);
		return true;
	}
	lapic_update(v, guest_tsc(g));  /* the timer as of now (its ticks are lazy) */
	if (((u32)offset & 0xf) + len > 4) {
		odd_access(v, offset, buf, len, write);
		return true;
	}
	if (!write) {
		value = read_reg(v, reg) >> shift;
		memcpy(buf, &value, len);
		return true;
	}
	value = 0;
	memcpy(&value, buf, len);
	write_reg(v, reg, value << shift);
	return true;
}
