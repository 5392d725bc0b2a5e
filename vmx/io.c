/*
 * Port I/O exits (unconditional I/O exiting). The exit qualification
 * (SDM Vol. 3C Table 28-5) gives port, size, direction and string/rep;
 * the device layer's port map (devices/devices.c) routes them. Unassigned ports read
 * all-ones and ignore writes, and are counted.
 */
#include "vmx/io.h"
#include "vmx/event.h"
#include "vmx/mmu.h"
#include "vmx/vmcs.h"
#include "devices/devices.h"
#include "guest/memory.h"
#include "arch/x86/log.h"

#define DEBUG_EXIT_PORT 0xf4

static enum exit_action port_out_debug_exit(struct guest *g, u32 value)
{
	guest_end(g, (value << 1) | 1, "debug-exit port written with %#x", value);
	return EXIT_ENDED;
}

/* One element of an I/O instruction; false ends the guest. */
static enum exit_action io_one(struct guest *g, u16 port, unsigned size, bool in, u32 *value)
{
	if (!in && port == DEBUG_EXIT_PORT)
		return port_out_debug_exit(g, *value & (size == 4 ? ~0u : (1u << (8 * size)) - 1));
	if (!devices_port_io(g, port, size, in, value)) {
		if (g->unhandled_io++ < 8)
			log_printf("hv", "%s: unassigned port %#x %s (%u bytes): %s", g->cfg.name, port,
				   in ? "read" : "written", size, in ? "reads all-ones" : "ignored");
		if (in)
			*value = size == 4 ? ~0u : (1u << (8 * size)) - 1;
	}
	return EXIT_RESUME;
}

enum exit_action handle_io(struct guest *g, struct vmexit *e)
{
	unsigned size = (unsigned)(e->qualification & 7) + 1;
	bool in = e->qualification & BIT(3), string = e->qualification & BIT(4);
	bool rep = e->qualification & BIT(5);
	u16 port = (u16)(e->qualification >> 16);
	u64 mask = size == 4 ? 0xffffffffull : (1ull << (8 * size)) - 1;

	if (!string) {
		u32 value = (u32)(g->regs.rax & mask);
		enum exit_action a = io_one(g, port, size, in, &value);

		if (a != EXIT_RESUME)
			return a;
		if (in)
			g->regs.rax = (g->regs.rax & ~mask) | (value & mask);
		skip_instruction(e);
		return EXIT_RESUME;
	}

	/* INS/OUTS: ES:RDI or DS:RSI (a segment override is not modelled), with
	 * the whole REP count done in this exit. */
	u64 count = rep ? g->regs.rcx : 1;
	bool down = vmcs_readn(GUEST_RFLAGS) & BIT(10);
	u64 *index = in ? &g->regs.rdi : &g->regs.rsi;
	u64 seg_base = vmcs_readn(in ? GUEST_ES_BASE : GUEST_DS_BASE);

	for (; count; count--) {
		u64 gpa;
		u32 value = 0, pfec;
		u8 *p;

		if (mmu_translate(g, seg_base + *index, (in ? GACC_WRITE : 0) |
				  (guest_cpl() == 3 ? GACC_USER : 0), &gpa, &pfec) != GWALK_OK ||
		    !(p = guest_gpa_ptr(g, gpa, size))) {
			guest_end(g, 0, "string I/O on port %#x through unmapped address %#llx", port,
				  (unsigned long long)(seg_base + *index));
			return EXIT_ENDED;
		}
		if (!in)
			for (unsigned b = 0; b < size; b++)
				value |= (u32)p[b] << (8 * b);
		enum exit_action a = io_one(g, port, size, in, &value);
		if (a != EXIT_RESUME)
			return a;
		if (in)
			for (unsigned b = 0; b < size; b++)
				p[b] = (u8)(value >> (8 * b));
		*index = down ? *index - size : *index + size;
		if (rep)
			g->regs.rcx--;
	}
	skip_instruction(e);
	return EXIT_RESUME;
}
