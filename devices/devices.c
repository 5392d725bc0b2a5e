/*
 * A guest's devices as one: creating them, routing port and MMIO accesses
 * to the models (the maps below are the whole PC as the guest sees it,
 * tests/guests/PLATFORM.md), and combining every timer and interrupt
 * source (LAPIC first, then the 8259 through LINT0).
 */
#include <stdlib.h>
#include "devices/devices.h"
#include "devices/acpi_pm.h"
#include "devices/acpi_tables.h"
#include "devices/lapic.h"
#include "devices/pc_testdev.h"
#include "devices/pic.h"
#include "devices/pit.h"
#include "devices/platform.h"
#include "devices/rtc.h"
#include "devices/uart.h"

bool devices_init(struct guest *g)
{
	g->dev = calloc(1, sizeof(*g->dev));
	if (!g->dev)
		return false;
	pic_reset(g);
	for (int i = 0; i < g->nr_vcpus; i++)
		lapic_reset(&g->vcpu[i]);
	rtc_reset(g);
	return true;
}

void devices_free(struct guest *g)
{
	if (!g->dev)
		return;
	testdev_free(g);
	free(g->dev);
	g->dev = NULL;
}

/* ---- ports ------------------------------------------------------------------ */

typedef bool (*port_handler)(struct guest *g, u16 port, unsigned size, bool in, u32 *value);

#define BYTE_WIDE true   /* a wider access touches consecutive byte ports */

static const struct {
	u16 first, last;
	port_handler handler;
	bool byte_wide;
} port_map[] = {
	{ 0x20, 0x21, pic_io, BYTE_WIDE },
	{ 0x40, 0x43, pit_io, BYTE_WIDE },
	{ 0x61, 0x61, port61_io, BYTE_WIDE },
	{ 0x70, 0x71, rtc_io, BYTE_WIDE },
	{ 0xa0, 0xa1, pic_io, BYTE_WIDE },
	{ 0xe0, 0xe3, testdev_io, false },
	{ 0xe9, 0xe9, e9_io, BYTE_WIDE },
	{ 0x3f8, 0x3ff, uart_io, BYTE_WIDE },
	{ 0x510, 0x511, fw_cfg_io, false },
	{ ACPI_PM1A_EVT_PORT, ACPI_PM1A_CNT_PORT + 1, acpi_pm_io, BYTE_WIDE },
	{ ACPI_PM_TMR_PORT, ACPI_PM_TMR_PORT + 3, pm_timer_io, false },
	{ 0xcf8, 0xcff, pci_config_io, false },
	{ PC_TESTDEV_IRQ_PORT, PC_TESTDEV_IRQ_PORT + PC_TESTDEV_IRQ_LINES - 1, pc_testdev_irq_io, BYTE_WIDE },
	{ 0x8900, 0x8900, ignored_io, false },  /* Bochs' shutdown port, written after 0xf4 */
};

static void update(struct vcpu *v, u64 now);

static bool port_io(struct guest *g, u16 port, unsigned size, bool in, u32 *value)
{
	for (size_t i = 0; i < ARRAY_SIZE(port_map); i++) {
		if (port >= port_map[i].first && port <= port_map[i].last) {
			u32 result = 0;

			if (!port_map[i].byte_wide)
				return port_map[i].handler(g, port, size, in, value);

			for (unsigned b = 0; b < size; b++) {
				u32 byte = (*value >> (8 * b)) & 0xff;

				if (port + b > port_map[i].last ||
				    !port_map[i].handler(g, (u16)(port + b), 1, in, &byte))
					byte = 0xff;
				result |= (byte & 0xff) << (8 * b);
			}
			if (in)
				*value = result;
			return true;
		}
	}
	return false;
}

bool devices_port_io(struct vcpu *v, u16 port, unsigned size, bool in, u32 *value)
{
	bool claimed;

	spin_lock(&v->g->dev_lock);
	/* Timers are lazy (devices_next_event()): bring them to now first. */
	update(v, guest_tsc(v->g));
	claimed = port_io(v->g, port, size, in, value);
	spin_unlock(&v->g->dev_lock);
	return claimed;
}

/* ---- guest-physical MMIO map ------------------------------------------------------ */

static const struct {
	u64 base, size;
	bool (*access)(struct vcpu *v, u64 offset, void *buf, unsigned len, bool write);
} mmio_map[] = {
	{ 0xfee00000ull, 0x1000, lapic_mmio },
	{ 0xff000000ull, TESTDEV_MMIO_SIZE, testdev_mmio },
};

bool devices_mmio_claimed(u64 gpa)
{
	for (size_t i = 0; i < ARRAY_SIZE(mmio_map); i++)
		if (gpa - mmio_map[i].base < mmio_map[i].size)
			return true;
	return false;
}

bool devices_mmio(struct vcpu *v, u64 gpa, void *buf, unsigned len, bool write)
{
	for (size_t i = 0; i < ARRAY_SIZE(mmio_map); i++) {
		u64 off = gpa - mmio_map[i].base;
		bool done;

		if (off < mmio_map[i].size && len <= mmio_map[i].size - off) {
			spin_lock(&v->g->dev_lock);
			done = mmio_map[i].access(v, off, buf, len, write);
			spin_unlock(&v->g->dev_lock);
			return done;
		}
	}
	return false;
}

/* ---- interrupt sources together ------------------------------------------------------ */

/*
 * The 8259 (and so the PIT and the RTC) reaches only the bootstrap processor, through
 * its LINT0 in ExtINT mode as a PC's BIOS leaves it (virtual wire, MP spec
 * 3.6.2.2); every other source is a vCPU's own APIC.
 */
static bool gets_pic(struct vcpu *v)
{
	return v->index == 0 && lapic_accepts_pic(v);
}

static void update(struct vcpu *v, u64 now)
{
	pit_update(v->g, now);
	lapic_update(v, now);
	rtc_update(v->g, now);
}

void devices_update(struct vcpu *v, u64 now)
{
	spin_lock(&v->g->dev_lock);
	update(v, now);
	spin_unlock(&v->g->dev_lock);
}

static u64 earlier(u64 a, u64 b)
{
	return !a ? b : !b ? a : a < b ? a : b;
}

u64 devices_next_event(struct vcpu *v)
{
	u64 next;

	spin_lock(&v->g->dev_lock);
	next = lapic_next_event(v);
	if (v->index == 0)
		next = earlier(earlier(next, pit_next_event(v->g)), rtc_next_event(v->g));
	spin_unlock(&v->g->dev_lock);
	return next;
}

bool devices_enter_sleep(struct guest *g)
{
	struct acpi_pm_state *pm = &g->dev->pm;
	bool entered;

	spin_lock(&g->dev_lock);
	entered = pm->sleep_requested;
	if (entered) {
		pm->sleep_requested = false;
		pm->asleep = true;
		pm->woke = false;
	}
	spin_unlock(&g->dev_lock);
	return entered;
}

bool devices_nmi_pending(struct vcpu *v)
{
	return lapic_nmi_pending(v);
}

void devices_nmi_ack(struct vcpu *v)
{
	spin_lock(&v->g->dev_lock);
	lapic_nmi_ack(v);
	spin_unlock(&v->g->dev_lock);
}

static int pending_vector(struct vcpu *v)
{
	int vector;

	if (v->g->dev->pm.asleep)  /* in S3 the CPU takes no interrupt; only a wake event */
		return -1;
	vector = lapic_pending_vector(v);
	if (vector >= 0)
		return vector;
	return gets_pic(v) ? pic_pending_vector(v->g) : -1;
}

int devices_pending_vector(struct vcpu *v)
{
	int vector;

	spin_lock(&v->g->dev_lock);
	vector = pending_vector(v);
	spin_unlock(&v->g->dev_lock);
	return vector;
}

bool devices_wakes_cpu(struct vcpu *v)
{
	struct acpi_pm_state *pm = &v->g->dev->pm;
	bool wakes;

	spin_lock(&v->g->dev_lock);
	wakes = pm->woke;
	pm->woke = false;
	if (!wakes)
		wakes = pending_vector(v) >= 0;
	spin_unlock(&v->g->dev_lock);
	return wakes;
}

const char *devices_vector_source(struct vcpu *v, int vector)
{
	if (lapic_timer_vector(v) == vector)
		return "APIC timer";
	if (gets_pic(v) && pic_irq_of_vector(v->g, vector) == 0)
		return "PIT";
	return "device or IPI";
}

void devices_ack(struct vcpu *v, int vector)
{
	spin_lock(&v->g->dev_lock);
	if (lapic_pending_vector(v) == vector)
		lapic_ack(v, vector);
	else
		pic_ack(v->g, vector);
	spin_unlock(&v->g->dev_lock);
}
