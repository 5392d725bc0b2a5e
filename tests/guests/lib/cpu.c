/*
 * CPU helpers that need the exception machinery or more than one instruction: MSR accesses
 * that may #GP, umbra detection, hypercalls, and 64-bit division for 32-bit builds.
 */
#include "internal.h"

bool rdmsr_safe(u32 msr, u64 *val)
{
	u32 lo = 0, hi = 0;

	expect_exception(GP_VECTOR);
	asm volatile(ASM_TRY("1f") "rdmsr\n1:" : "+a"(lo), "+d"(hi) : "c"(msr) : "memory");
	*val = ((u64)hi << 32) | lo;
	return exception_caught();
}

bool wrmsr_safe(u32 msr, u64 val)
{
	expect_exception(GP_VECTOR);
	asm volatile(ASM_TRY("1f") "wrmsr\n1:"
		     : : "c"(msr), "a"((u32)val), "d"((u32)(val >> 32)) : "memory");
	return exception_caught();
}

bool is_umbra(void)
{
	struct cpuid_regs r = cpuid(1, 0);

	if (!(r.ecx & BIT(31)))
		return false;
	r = cpuid(0x40000000, 0);
	u32 signature[3] = { r.ebx, r.ecx, r.edx };

	return memcmp(signature, "UmbraUmbraHV", 12) == 0;
}

long vmcall(unsigned long func, unsigned long a, unsigned long b, unsigned long c)
{
	long ret;

	asm volatile("vmcall" : "=a"(ret) : "a"(func), "b"(a), "c"(b), "d"(c) : "memory");
	return ret;
}

bool vmcall_safe(struct vmcall_regs *r)
{
	expect_exception(UD_VECTOR);
	asm volatile(ASM_TRY("1f") "vmcall\n1:"
		     : "+a"(r->ax), "+b"(r->bx), "+c"(r->cx), "+d"(r->dx) : : "memory");
	return exception_caught();
}

/* Shift-and-subtract long division: slow, but only used for printing and timing maths. */
u64 udiv64(u64 n, u32 d, u32 *rem)
{
	u64 q = 0, r = 0;

	for (int bit = 63; bit >= 0; bit--) {
		r = (r << 1) | ((n >> bit) & 1);
		if (r >= d) {
			r -= d;
			q |= 1ull << bit;
		}
	}
	if (rem)
		*rem = r;
	return q;
}
