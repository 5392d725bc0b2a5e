/*
 * INS/OUTS semantics (arch/x86/strio.c) on the host, against the SDM: count
 * and index registers by address size (16-bit writes keep the upper bits,
 * 32-bit writes zero-extend) and their wrap-around, DF, the per-call element
 * budget, faults at the exact element with the registers as the CPU leaves
 * them and no input lost, segment limits and rights, 64-bit canonical
 * addresses and FS/GS bases, and the prefix decoder.
 */
#include <string.h>
#include "unit.h"
#include "arch/x86/strio.h"

/* A guest-linear window of memory, with one address that faults. */
#define MEM_BASE 0x10000ull
#define MEM_SIZE 0x20000ull

static u8 mem[MEM_SIZE];
static u64 fault_at;            /* linear address whose page faults (0: none) */
static u32 port_value;          /* what the next IN returns; incremented per read */
static unsigned port_reads, port_writes, checks;
static u32 last_out;
static bool stop_port;

static enum x86_cb_status fake_mem(void *opaque, u64 la, void *buf, unsigned int len, bool write,
				   struct x86_fault *fault)
{
	(void)opaque;
	for (u64 a = la; a < la + len; a++) {
		if (fault_at && (a & ~0xfffull) == (fault_at & ~0xfffull)) {
			*fault = (struct x86_fault){ .vector = 14, .has_error_code = true,
						     .error_code = write ? 2 : 0, .address = a };
			return X86_CB_FAULT;
		}
		if (a < MEM_BASE || a >= MEM_BASE + MEM_SIZE)
			return X86_CB_UNHANDLED;
	}
	if (!buf) {
		checks++;
		return X86_CB_OK;
	}
	if (write)
		memcpy(&mem[la - MEM_BASE], buf, len);
	else
		memcpy(buf, &mem[la - MEM_BASE], len);
	return X86_CB_OK;
}

static bool fake_port(void *opaque, u16 port, unsigned int size, bool in, u32 *value)
{
	(void)opaque, (void)port, (void)size;
	if (stop_port)
		return false;
	if (in) {
		*value = port_value++;
		port_reads++;
	} else {
		last_out = *value;
		port_writes++;
	}
	return true;
}

static const struct x86_strio_ops ops = { .mem = fake_mem, .port = fake_port };

static void reset(void)
{
	memset(mem, 0, sizeof(mem));
	fault_at = 0;
	port_value = 0x11;
	port_reads = port_writes = checks = 0;
	stop_port = false;
}

/* Flat 64-bit INS of bytes, REP, DF=0. */
static struct x86_strio ins64(u8 size)
{
	return (struct x86_strio){ .port = 0x210, .size = size, .in = true, .rep = true,
				   .addr_size = 8, .mode = X86_MODE_64, .seg = X86_SEG_ES,
				   .seg_ar = 0xc093, .seg_limit = 0xffffffff };
}

/* Flat 32-bit protected mode. */
static struct x86_strio flat32(bool in, u8 size)
{
	return (struct x86_strio){ .port = 0xe0, .size = size, .in = in, .rep = true,
				   .addr_size = 4, .mode = X86_MODE_32,
				   .seg = in ? X86_SEG_ES : X86_SEG_DS, .seg_ar = 0xc093,
				   .seg_limit = 0xffffffff };
}

static enum x86_strio_status run(const struct x86_strio *s, struct x86_strio_regs *r, u64 max,
				 struct x86_fault *f, u64 *n)
{
	return x86_strio_run(s, r, max, &ops, NULL, f, n);
}

TEST(addr32_count_is_ecx_and_zero_extends)
{
	struct x86_strio s = ins64(1);
	struct x86_strio_regs r = { .rcx = (1ull << 32) + 4, .rdi = 0xdead000000000000ull | MEM_BASE };
	struct x86_fault f;
	u64 n;

	reset();
	s.addr_size = 4;
	CHECK_EQ(run(&s, &r, 4096, &f, &n), X86_STRIO_DONE);
	CHECK_EQ(n, 4);
	CHECK_EQ(r.rcx, 0);                  /* ECX = 0, upper half cleared */
	CHECK_EQ(r.rdi, MEM_BASE + 4);       /* EDI + 4, zero-extended */
	CHECK_EQ(mem[0], 0x11);
	CHECK_EQ(mem[3], 0x14);
	CHECK_EQ(mem[4], 0);
}

TEST(addr16_count_and_index_wrap_keep_upper_bits)
{
	struct x86_strio s = flat32(true, 1);
	struct x86_strio_regs r = { .rcx = 0x10003, .rdi = 0x1234fffe };
	struct x86_fault f;
	u64 n;

	reset();
	s.addr_size = 2;
	s.seg_base = MEM_BASE;
	CHECK_EQ(run(&s, &r, 4096, &f, &n), X86_STRIO_DONE);
	CHECK_EQ(n, 3);                      /* CX = 3, not ECX */
	CHECK_EQ(r.rcx, 0x10000);
	CHECK_EQ(r.rdi, 0x12340001);         /* DI wrapped 0xffff -> 0 */
	CHECK_EQ(mem[0xfffe], 0x11);
	CHECK_EQ(mem[0xffff], 0x12);
	CHECK_EQ(mem[0x0000], 0x13);
	CHECK_EQ(mem[0x10000], 0);
}

TEST(addr32_index_wraps_at_4g)
{
	struct x86_strio s = ins64(1);
	struct x86_strio_regs r = { .rcx = 2, .rdi = 0xffffffff };
	struct x86_fault f;
	u64 n;

	reset();
	s.addr_size = 4;
	s.seg = X86_SEG_ES;
	fault_at = 0xfffff000;  /* proves the first element went to 0xffffffff */
	CHECK_EQ(run(&s, &r, 4096, &f, &n), X86_STRIO_FAULT);
	CHECK_EQ(f.address, 0xffffffff);
	CHECK_EQ(r.rdi, 0xffffffff);
	fault_at = 0;
	r.rdi = 0xffffffff;
	s.rep = false;
	CHECK_EQ(run(&s, &r, 4096, &f, &n), X86_STRIO_UNHANDLED);  /* outside the window */
	r.rdi = 0xffffffff;
	s.seg_base = 0;
	s.mode = X86_MODE_32;
	s.seg_base = MEM_BASE + 1;              /* base + 0xffffffff wraps to MEM_BASE */
	s.rep = true;
	r.rcx = 2;
	CHECK_EQ(run(&s, &r, 4096, &f, &n), X86_STRIO_DONE);
	CHECK_EQ(mem[0], 0x11);                 /* (u32)(base + 0xffffffff) */
	CHECK_EQ(mem[1], 0x12);                 /* EDI wrapped to 0 */
	CHECK_EQ(r.rdi, 1);
}

TEST(df_goes_down)
{
	struct x86_strio s = ins64(2);
	struct x86_strio_regs r = { .rcx = 3, .rdi = MEM_BASE + 0x100 };
	struct x86_fault f;
	u64 n;

	reset();
	s.down = true;
	CHECK_EQ(run(&s, &r, 4096, &f, &n), X86_STRIO_DONE);
	CHECK_EQ(r.rdi, MEM_BASE + 0x100 - 6);
	CHECK_EQ(mem[0x100], 0x11);
	CHECK_EQ(mem[0xfe], 0x12);
	CHECK_EQ(mem[0xfc], 0x13);
}

TEST(budget_then_more)
{
	struct x86_strio s = ins64(4);
	struct x86_strio_regs r = { .rcx = 1500, .rdi = MEM_BASE };
	struct x86_fault f;
	u64 n;

	reset();
	CHECK_EQ(run(&s, &r, 1024, &f, &n), X86_STRIO_MORE);
	CHECK_EQ(n, 1024);
	CHECK_EQ(r.rcx, 1500 - 1024);
	CHECK_EQ(r.rdi, MEM_BASE + 4096);
	CHECK_EQ(run(&s, &r, 1024, &f, &n), X86_STRIO_DONE);
	CHECK_EQ(n, 476);
	CHECK_EQ(r.rcx, 0);
	CHECK_EQ(port_reads, 1500);
	/* A count that ends exactly at the budget is done, not "more". */
	r.rcx = 8;
	CHECK_EQ(run(&s, &r, 8, &f, &n), X86_STRIO_DONE);
}

TEST(count_zero_and_no_rep)
{
	struct x86_strio s = ins64(1);
	struct x86_strio_regs r = { .rcx = 0xffffffff00000000ull, .rdi = MEM_BASE };
	struct x86_fault f;
	u64 n;

	reset();
	s.addr_size = 4;                        /* ECX = 0: nothing at all */
	CHECK_EQ(run(&s, &r, 4096, &f, &n), X86_STRIO_DONE);
	CHECK_EQ(n, 0);
	CHECK_EQ(checks + port_reads, 0);
	CHECK_EQ(r.rcx, 0xffffffff00000000ull);
	s.rep = false;                          /* one element, RCX untouched */
	r.rcx = 77;
	CHECK_EQ(run(&s, &r, 4096, &f, &n), X86_STRIO_DONE);
	CHECK_EQ(n, 1);
	CHECK_EQ(r.rcx, 77);
	CHECK_EQ(r.rdi, MEM_BASE + 1);
}

TEST(fault_mid_string_leaves_registers_and_loses_no_input)
{
	struct x86_strio s = ins64(4);
	struct x86_strio_regs r = { .rcx = 10, .rdi = MEM_BASE + 0x1000 - 6 };
	struct x86_fault f;
	u64 n;

	reset();
	fault_at = MEM_BASE + 0x1000;
	/* Element 0 fits, element 1 straddles into the faulting page. */
	CHECK_EQ(run(&s, &r, 4096, &f, &n), X86_STRIO_FAULT);
	CHECK_EQ(n, 1);
	CHECK_EQ(f.vector, 14);
	CHECK_EQ(f.address, MEM_BASE + 0x1000);
	CHECK_EQ(f.error_code, 2);
	CHECK_EQ(r.rcx, 9);
	CHECK_EQ(r.rdi, MEM_BASE + 0x1000 - 2);
	CHECK_EQ(port_reads, 1);                /* the faulting element read no input */
	CHECK_EQ(mem[0xffe], 0);                /* and wrote none of its first page */
	/* OUTS faults on the read: nothing written to the port. */
	s = flat32(false, 2);
	r = (struct x86_strio_regs){ .rcx = 4, .rsi = MEM_BASE + 0x1000 - 4 };
	CHECK_EQ(run(&s, &r, 4096, &f, &n), X86_STRIO_FAULT);
	CHECK_EQ(n, 2);
	CHECK_EQ(port_writes, 2);
	CHECK_EQ(r.rsi, MEM_BASE + 0x1000);
	CHECK_EQ(r.rcx, 2);
	CHECK_EQ(f.error_code, 0);
}

TEST(page_straddling_element_whole)
{
	struct x86_strio s = flat32(false, 4);
	struct x86_strio_regs r = { .rcx = 1, .rsi = MEM_BASE + 0xffe };

	struct x86_fault f;
	u64 n;

	reset();
	memcpy(&mem[0xffe], "\x01\x02\x03\x04", 4);
	CHECK_EQ(run(&s, &r, 4096, &f, &n), X86_STRIO_DONE);
	CHECK_EQ(last_out, 0x04030201);
}

TEST(segment_limits_and_rights)
{
	struct x86_strio s = flat32(true, 2);
	struct x86_strio_regs r;
	struct x86_fault f;
	u64 n;

	reset();
	s.seg_base = MEM_BASE;
	s.seg_limit = 0xfff;
	r = (struct x86_strio_regs){ .rcx = 2, .rdi = 0xffc };
	CHECK_EQ(run(&s, &r, 4096, &f, &n), X86_STRIO_DONE);   /* 0xffc..0xfff */
	r = (struct x86_strio_regs){ .rcx = 2, .rdi = 0xffd };
	CHECK_EQ(run(&s, &r, 4096, &f, &n), X86_STRIO_FAULT);  /* 0xfff..0x1000 */
	CHECK_EQ(n, 1);
	CHECK_EQ(f.vector, 13);
	CHECK_EQ(f.error_code, 0);
	CHECK_EQ(port_reads, 3);
	/* Expand-down, 16-bit: valid offsets are limit+1..0xffff. */
	s.seg_ar = 0x0097;
	r = (struct x86_strio_regs){ .rcx = 1, .rdi = 0xfff };
	CHECK_EQ(run(&s, &r, 4096, &f, &n), X86_STRIO_FAULT);
	r = (struct x86_strio_regs){ .rcx = 1, .rdi = 0x1000 };
	CHECK_EQ(run(&s, &r, 4096, &f, &n), X86_STRIO_DONE);
	r = (struct x86_strio_regs){ .rcx = 1, .rdi = 0xffff };
	CHECK_EQ(run(&s, &r, 4096, &f, &n), X86_STRIO_FAULT);
	/* INS needs a writable data segment; a null one faults; SS gives #SS. */
	s.seg_limit = 0xffffffff;
	s.seg_ar = 0xc091;                      /* read-only data */
	r = (struct x86_strio_regs){ .rcx = 1, .rdi = 0 };
	CHECK_EQ(run(&s, &r, 4096, &f, &n), X86_STRIO_FAULT);
	s.real_mode = true;                     /* rights do not count in real mode */
	CHECK_EQ(run(&s, &r, 4096, &f, &n), X86_STRIO_DONE);
	s.real_mode = false;
	s.seg_ar = 0x10000;
	r = (struct x86_strio_regs){ .rcx = 1, .rdi = 0 };
	CHECK_EQ(run(&s, &r, 4096, &f, &n), X86_STRIO_FAULT);
	s = flat32(false, 1);
	s.seg = X86_SEG_SS;
	s.seg_base = MEM_BASE;
	s.seg_limit = 0xff;
	r = (struct x86_strio_regs){ .rcx = 1, .rsi = 0x100 };
	CHECK_EQ(run(&s, &r, 4096, &f, &n), X86_STRIO_FAULT);
	CHECK_EQ(f.vector, 12);
	s.seg = X86_SEG_CS;                     /* execute-only code cannot be read */
	s.seg_ar = 0xc099;
	s.seg_limit = 0xffffffff;
	CHECK_EQ(run(&s, &r, 4096, &f, &n), X86_STRIO_FAULT);
	s.seg_ar = 0xc09b;                      /* execute/read */
	CHECK_EQ(run(&s, &r, 4096, &f, &n), X86_STRIO_DONE);
}

TEST(long_mode_bases_and_canonical)
{
	struct x86_strio s = ins64(1);
	struct x86_strio_regs r;
	struct x86_fault f;
	u64 n;

	reset();
	s.in = false;
	s.seg = X86_SEG_DS;
	s.seg_base = 0x5000;                    /* ignored in 64-bit mode */
	s.seg_limit = 0;                        /* so are limits */
	mem[0x10] = 0xab;
	r = (struct x86_strio_regs){ .rcx = 1, .rsi = MEM_BASE + 0x10 };
	CHECK_EQ(run(&s, &r, 4096, &f, &n), X86_STRIO_DONE);
	CHECK_EQ(last_out, 0xab);
	s.seg = X86_SEG_FS;                     /* FS has one */
	s.seg_base = MEM_BASE;
	r = (struct x86_strio_regs){ .rcx = 1, .rsi = 0x10 };
	CHECK_EQ(run(&s, &r, 4096, &f, &n), X86_STRIO_DONE);
	CHECK_EQ(last_out, 0xab);
	s.seg = X86_SEG_DS;
	r = (struct x86_strio_regs){ .rcx = 1, .rsi = 0x0000800000000000ull };
	CHECK_EQ(run(&s, &r, 4096, &f, &n), X86_STRIO_FAULT);
	CHECK_EQ(f.vector, 13);
	s.seg = X86_SEG_SS;
	CHECK_EQ(run(&s, &r, 4096, &f, &n), X86_STRIO_FAULT);
	CHECK_EQ(f.vector, 12);
	/* An element whose last byte is past the canonical end. */
	s.seg = X86_SEG_DS;
	s.size = 4;
	r = (struct x86_strio_regs){ .rcx = 1, .rsi = 0x00007ffffffffffeull };
	CHECK_EQ(run(&s, &r, 4096, &f, &n), X86_STRIO_FAULT);
}

TEST(port_stop)
{
	struct x86_strio s = flat32(false, 1);
	struct x86_strio_regs r = { .rcx = 5, .rsi = MEM_BASE };
	struct x86_fault f;
	u64 n;

	reset();
	stop_port = true;
	CHECK_EQ(run(&s, &r, 4096, &f, &n), X86_STRIO_STOPPED);
	CHECK_EQ(r.rcx, 5);
}

TEST(decode_prefixes)
{
	u8 size;
	enum x86_seg seg;

	CHECK(x86_strio_decode((const u8 *)"\x67\xf3\x6c", 3, X86_MODE_64, &size, &seg));
	CHECK_EQ(size, 4);
	CHECK_EQ(seg, X86_SEG_ES);
	CHECK(x86_strio_decode((const u8 *)"\xf3\x64\x6e", 3, X86_MODE_64, &size, &seg));
	CHECK_EQ(size, 8);
	CHECK_EQ(seg, X86_SEG_FS);
	CHECK(x86_strio_decode((const u8 *)"\x64\x6d", 2, X86_MODE_32, &size, &seg));
	CHECK_EQ(seg, X86_SEG_ES);              /* INS: no override */
	CHECK(x86_strio_decode((const u8 *)"\x2e\x66\x6f", 3, X86_MODE_32, &size, &seg));
	CHECK_EQ(size, 4);
	CHECK_EQ(seg, X86_SEG_CS);
	CHECK(x86_strio_decode((const u8 *)"\x67\x6e", 2, X86_MODE_32, &size, &seg));
	CHECK_EQ(size, 2);
	CHECK(x86_strio_decode((const u8 *)"\x67\x6e", 2, X86_MODE_16, &size, &seg));
	CHECK_EQ(size, 4);
	CHECK(x86_strio_decode((const u8 *)"\xf3\x48\x6f", 3, X86_MODE_64, &size, &seg));
	CHECK_EQ(seg, X86_SEG_DS);
	CHECK(!x86_strio_decode((const u8 *)"\xf3\x90", 2, X86_MODE_64, &size, &seg));
	CHECK(!x86_strio_decode((const u8 *)"\x48\x6c", 2, X86_MODE_32, &size, &seg));  /* dec eax */
	CHECK(!x86_strio_decode((const u8 *)"\x67\x67", 2, X86_MODE_64, &size, &seg));
}

UNIT_MAIN()
