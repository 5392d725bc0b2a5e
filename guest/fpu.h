/*
 * Guest FPU/SSE/AVX state (guest/fpu.c): it stays in the CPU while its guest
 * runs (the hypervisor never touches these registers) and is switched only
 * when another guest gets the CPU.
 */
#ifndef GUEST_FPU_H
#define GUEST_FPU_H

#include "guest/guest.h"

/* XSAVE components switched between guests, and so the most a guest may enable:
 * x87, SSE, AVX, AVX-512 (opmask, ZMM_Hi256, Hi16_ZMM): 2,688 bytes at most, one
 * page. Not MPX (IA32_BNDCFGS is not provided), PKRU (PKU hidden), AMX (XFD, and
 * a state area of 8 KiB more). */
#define FPU_XCR0_SWITCHED 0xe7ull

/* Enable FXSR/XSAVE for the host once (CR4), before any guest. */
void fpu_init_host(void);
/* The per-CPU part (CR4 bits) on another CPU, after fpu_init_host() on the first. */
void fpu_init_cpu(void);
/* The CPU's XSAVEC writes the SDM's compacted layout (checked by fpu_init_host()). */
bool fpu_xsavec_conforms(void);
/* A guest's FPU area with the reset state (FCW, MXCSR, XCR0 = x87). */
void fpu_init_guest(struct vcpu *v);
void fpu_free_guest(struct vcpu *v);
/* Save from's registers (if any) and load to's; to NULL: only save. */
void fpu_switch(struct vcpu *from, struct vcpu *to);
/*
 * The running guest's x87/MMX/SSE registers as a 512-byte FXSAVE image
 * (16-byte aligned): read them out and put them back, for an emulated
 * instruction that moves an mm/xmm register. AVX upper halves are untouched.
 */
void fpu_live_save(void *area);
void fpu_live_load(const void *area);

#endif
