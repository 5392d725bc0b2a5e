/*
 * Raw VMX instructions. Each returns the VMX status (SDM 31.2): 0 success,
 * 1 VMfailInvalid (CF=1, no current VMCS), 2 VMfailValid (ZF=1, error in
 * VM_INSTRUCTION_ERROR). Callers in vmx/vmx.c check and report.
 */
#ifndef VMX_VMX_ASM_H
#define VMX_VMX_ASM_H

#include "lib/types.h"

enum vmx_status { VMX_OK = 0, VMX_FAIL_INVALID = 1, VMX_FAIL_VALID = 2 };

#define VMX_STATUS_FROM_FLAGS(cf, zf) ((cf) ? VMX_FAIL_INVALID : (zf) ? VMX_FAIL_VALID : VMX_OK)

static inline enum vmx_status vmxon_raw(u64 pa)
{
	u8 cf, zf;

	asm volatile("vmxon %2; setc %0; setz %1" : "=qm"(cf), "=qm"(zf) : "m"(pa) : "cc", "memory");
	return VMX_STATUS_FROM_FLAGS(cf, zf);
}

static inline enum vmx_status vmclear_raw(u64 pa)
{
	u8 cf, zf;

	asm volatile("vmclear %2; setc %0; setz %1" : "=qm"(cf), "=qm"(zf) : "m"(pa) : "cc", "memory");
	return VMX_STATUS_FROM_FLAGS(cf, zf);
}

static inline enum vmx_status vmptrld_raw(u64 pa)
{
	u8 cf, zf;

	asm volatile("vmptrld %2; setc %0; setz %1" : "=qm"(cf), "=qm"(zf) : "m"(pa) : "cc", "memory");
	return VMX_STATUS_FROM_FLAGS(cf, zf);
}

static inline enum vmx_status vmread_raw(u64 field, u64 *val)
{
	u8 cf, zf;

	asm volatile("vmread %3, %0; setc %1; setz %2"
		     : "=rm"(*val), "=qm"(cf), "=qm"(zf) : "r"(field) : "cc");
	return VMX_STATUS_FROM_FLAGS(cf, zf);
}

static inline enum vmx_status vmwrite_raw(u64 field, u64 val)
{
	u8 cf, zf;

	asm volatile("vmwrite %3, %2; setc %0; setz %1"
		     : "=qm"(cf), "=qm"(zf) : "r"(field), "rm"(val) : "cc", "memory");
	return VMX_STATUS_FROM_FLAGS(cf, zf);
}

struct invept_desc {
	u64 eptp, reserved;
};

struct invvpid_desc {
	u64 vpid, linear_address;
};

static inline enum vmx_status invept_raw(u64 type, const struct invept_desc *d)
{
	u8 cf, zf;

	asm volatile("invept %2, %3; setc %0; setz %1"
		     : "=qm"(cf), "=qm"(zf) : "m"(*d), "r"(type) : "cc", "memory");
	return VMX_STATUS_FROM_FLAGS(cf, zf);
}

static inline enum vmx_status invvpid_raw(u64 type, const struct invvpid_desc *d)
{
	u8 cf, zf;

	asm volatile("invvpid %2, %3; setc %0; setz %1"
		     : "=qm"(cf), "=qm"(zf) : "m"(*d), "r"(type) : "cc", "memory");
	return VMX_STATUS_FROM_FLAGS(cf, zf);
}

#endif
