/*
 * Guest FPU/SSE/AVX state. The hypervisor never touches these registers
 * (-mgeneral-regs-only), so the running guest's state simply stays in the
 * CPU; it is saved and restored only when another guest is switched in.
 * XSAVE with every supported component when available, else FXSAVE.
 */
#include <string.h>
#include "guest/fpu.h"
#include "arch/x86/cpu.h"
#include "mm/mm.h"
#include "arch/x86/log.h"
#include "arch/x86/panic.h"

static bool use_xsave;
static bool xsavec_conforms;
static u64 host_xcr0_all;

static void xsetbv0(u64 v)
{
	asm volatile("xsetbv" : : "a"((u32)v), "d"((u32)(v >> 32)), "c"(0));
}

/*
 * Does the CPU's XSAVEC write the compacted layout of SDM Vol. 1 13.4.3? With
 * only AVX requested, its state goes right after the 576-byte legacy area and
 * header. Bochs 2.7's XSAVEC puts it at 160, over the header (a guest using
 * XSAVEC there loses YMM upper halves at every context switch): umbra then
 * does not offer XSAVEC (vmx/features.c). Run once, before any guest, with
 * the host's own XCR0: XRSTOR of a standard-format area puts all-ones in the
 * YMM upper halves (no vector instruction in the hypervisor), XSAVEC saves
 * them. No guest ever sees those registers: its own state is loaded first.
 */
static bool check_xsavec(void)
{
	static u8 in[1024] __attribute__((aligned(64))), out[1024] __attribute__((aligned(64)));

	if (!(cpuid(0xd, 1).eax & (1u << 1)) || !(host_xcr0_all & 4))
		return false;
	memset(in, 0, sizeof(in));
	memset(out, 0, sizeof(out));
	memcpy(in + 24, &(u32){ 0x1f80 }, 4);	/* MXCSR: loaded with AVX state */
	in[512] = 4;				/* XSTATE_BV: AVX */
	memset(in + 576, 0xff, 256);		/* YMM0-15 upper halves */
	xsetbv0(host_xcr0_all);
	asm volatile("xrstor64 (%0)\n\txsavec64 (%1)"
		     : : "r"(in), "r"(out), "a"(4u), "d"(0u) : "memory");
	for (u32 i = 576; i < 576 + 256; i++)
		if (out[i] != 0xff)
			return false;
	return true;
}

bool fpu_xsavec_conforms(void)
{
	return xsavec_conforms;
}

void fpu_init_host(void)
{
	use_xsave = cpuid(1, 0).ecx & (1u << 26);
	if (use_xsave) {
		struct cpuid_regs xs = cpuid(0xd, 0);

		host_xcr0_all = (((u64)xs.edx << 32) | xs.eax) & FPU_XCR0_SWITCHED;
	}
	fpu_init_cpu();
	/* After CR4.OSXSAVE is set: CPUID 0xD.0:EBX is the area size for the XCR0 now
	 * set (SDM Vol. 1 13.2), so a host with more components (AMX) still fits a page. */
	if (use_xsave) {
		u32 size;

		xsetbv0(host_xcr0_all);
		size = cpuid(0xd, 0).ebx;
		if (size > PAGE_SIZE)
			panic("XSAVE area of %u bytes for XCR0 %#llx does not fit a page", size,
			      (unsigned long long)host_xcr0_all);
		xsavec_conforms = check_xsavec();
		if (!xsavec_conforms && (cpuid(0xd, 1).eax & (1u << 1)))
			log_printf("hv", "XSAVEC writes a layout other than the SDM's compacted "
				   "one (Bochs 2.7): not offered to guests");
	}
}

void fpu_init_cpu(void)
{
	u64 cr4 = read_cr4() | CR4_OSFXSR | CR4_OSXMMEXCPT;

	write_cr4(use_xsave ? cr4 | CR4_OSXSAVE : cr4);
}

void fpu_init_guest(struct vcpu *v)
{
	v->fpu_state = alloc_zeroed_pages(1);
	if (!v->fpu_state)
		panic("no memory for guest FPU state");
	/* FCW 0x37f and MXCSR 0x1f80 are the reset values (SDM Vol. 1 8.1.5,
	 * 10.2.3); an all-zero XSAVE header means "init state" for the rest. */
	v->fpu_state[0] = 0x7f;
	v->fpu_state[1] = 0x03;
	memcpy(v->fpu_state + 24, &(u32){ 0x1f80 }, 4);
	v->xcr0 = 1;  /* x87 only, as after reset */
}

void fpu_free_guest(struct vcpu *v)
{
	if (v->fpu_state)
		free_pages(v->fpu_state, 1);
	v->fpu_state = NULL;
}

static void save(struct vcpu *v)
{
	if (use_xsave) {
		xsetbv0(host_xcr0_all);
		asm volatile("xsave64 (%0)" : : "r"(v->fpu_state), "a"(~0u), "d"(~0u) : "memory");
	} else {
		asm volatile("fxsave64 (%0)" : : "r"(v->fpu_state) : "memory");
	}
}

static void restore(struct vcpu *v)
{
	if (use_xsave) {
		xsetbv0(host_xcr0_all);
		asm volatile("xrstor64 (%0)" : : "r"(v->fpu_state), "a"(~0u), "d"(~0u) : "memory");
		xsetbv0(v->xcr0);
	} else {
		asm volatile("fxrstor64 (%0)" : : "r"(v->fpu_state) : "memory");
	}
}

void fpu_switch(struct vcpu *from, struct vcpu *to)
{
	if (from == to)
		return;
	if (from)
		save(from);
	if (to)  /* NULL: only save (the guest leaves this CPU) */
		restore(to);
}

/* The running guest's state is in the CPU: FXSAVE/FXRSTOR reach it without
 * the compiler ever touching an SSE register (-mgeneral-regs-only). */
void fpu_live_save(void *area)
{
	asm volatile("fxsave64 (%0)" : : "r"(area) : "memory");
}

void fpu_live_load(const void *area)
{
	asm volatile("fxrstor64 (%0)" : : "r"(area) : "memory");
}
