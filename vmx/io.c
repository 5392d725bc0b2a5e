/*
 * Port I/O exits (unconditional I/O exiting). The exit qualification
 * (SDM Vol. 3C Table 28-5) gives port, size, direction and string/rep;
 * a table maps port ranges to device models. Unassigned ports read
 * all-ones and ignore writes, and are counted.
 */
#include "vmx/exit.h"
#include "vmx/vmcs.h"
#include "vmx/memory.h"
#include "arch/x86/log.h"

#define DEBUG_EXIT_PORT 0xf4
#define E9_PORT 0xe9

static bool e9_io(struct guest *g, u16 port, unsigned size, bool in, u32 *value)
{
	(void)port, (void)size;
	if (in)
		*value = E9_PORT;  /* Bochs convention: reads back 0xe9 */
	else
		console_guest_putc(g, (char)*value);
	return true;
}

#define BYTE_WIDE true   /* a wider access touches consecutive byte ports */

static const struct {
	u16 first, last;
	port_handler handler;
	bool byte_wide;
} port_map[] = {
	{ 0x20, 0x21, pic_io, BYTE_WIDE },
	{ 0x40, 0x43, pit_io, BYTE_WIDE },
	{ 0x61, 0x61, port61_io, BYTE_WIDE },
	{ 0xa0, 0xa1, pic_io, BYTE_WIDE },
	{ 0xe0, 0xe3, testdev_io, false },
	{ E9_PORT, E9_PORT, e9_io, BYTE_WIDE },
	{ 0x3f8, 0x3ff, uart_io, BYTE_WIDE },
	{ 0x510, 0x511, fw_cfg_io, false },
	{ 0x608, 0x60b, pm_timer_io, false },
	{ 0xcf8, 0xcff, pci_config_io, false },
	{ 0x8900, 0x8900, ignored_io, false },  /* Bochs' shutdown port, written after 0xf4 */
};

static bool port_access(struct guest *g, u16 port, unsigned size, bool in, u32 *value)
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
	if (!port_access(g, port, size, in, value)) {
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
		u32 value = 0;
		u8 *p;

		if (!guest_linear_to_gpa(g, seg_base + *index, in, &gpa) ||
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
