/*
 * VMCS field encodings (SDM Vol. 3D Appendix B) and typed accessors. The
 * field width is encoded in bits 14:13 of the encoding (B.1-B.4), so using
 * the wrong accessor is a compile-time error. Every VMREAD/VMWRITE is
 * checked; a failure names the field, the VM-instruction error and the
 * caller (vmx/vmcs.c).
 */
#ifndef VMX_VMCS_H
#define VMX_VMCS_H

#include "lib/types.h"
#include "vmx/vmx_asm.h"

#define VMCS_FIELDS(X) \
	/* 16-bit */ \
	X(VPID, 0x0000) \
	X(GUEST_ES_SELECTOR, 0x0800) \
	X(GUEST_CS_SELECTOR, 0x0802) \
	X(GUEST_SS_SELECTOR, 0x0804) \
	X(GUEST_DS_SELECTOR, 0x0806) \
	X(GUEST_FS_SELECTOR, 0x0808) \
	X(GUEST_GS_SELECTOR, 0x080a) \
	X(GUEST_LDTR_SELECTOR, 0x080c) \
	X(GUEST_TR_SELECTOR, 0x080e) \
	X(HOST_ES_SELECTOR, 0x0c00) \
	X(HOST_CS_SELECTOR, 0x0c02) \
	X(HOST_SS_SELECTOR, 0x0c04) \
	X(HOST_DS_SELECTOR, 0x0c06) \
	X(HOST_FS_SELECTOR, 0x0c08) \
	X(HOST_GS_SELECTOR, 0x0c0a) \
	X(HOST_TR_SELECTOR, 0x0c0c) \
	/* 64-bit */ \
	X(IO_BITMAP_A, 0x2000) \
	X(IO_BITMAP_B, 0x2002) \
	X(MSR_BITMAP, 0x2004) \
	X(VM_EXIT_MSR_STORE_ADDR, 0x2006) \
	X(VM_EXIT_MSR_LOAD_ADDR, 0x2008) \
	X(VM_ENTRY_MSR_LOAD_ADDR, 0x200a) \
	X(TSC_OFFSET, 0x2010) \
	X(EPT_POINTER, 0x201a) \
	X(GUEST_PHYSICAL_ADDRESS, 0x2400) \
	X(VMCS_LINK_POINTER, 0x2800) \
	X(GUEST_IA32_DEBUGCTL, 0x2802) \
	X(GUEST_IA32_PAT, 0x2804) \
	X(GUEST_IA32_EFER, 0x2806) \
	X(GUEST_PDPTE0, 0x280a) \
	X(GUEST_PDPTE1, 0x280c) \
	X(GUEST_PDPTE2, 0x280e) \
	X(GUEST_PDPTE3, 0x2810) \
	X(HOST_IA32_PAT, 0x2c00) \
	X(HOST_IA32_EFER, 0x2c02) \
	/* 32-bit */ \
	X(PIN_BASED_VM_EXEC_CONTROL, 0x4000) \
	X(CPU_BASED_VM_EXEC_CONTROL, 0x4002) \
	X(EXCEPTION_BITMAP, 0x4004) \
	X(PAGE_FAULT_ERROR_CODE_MASK, 0x4006) \
	X(PAGE_FAULT_ERROR_CODE_MATCH, 0x4008) \
	X(CR3_TARGET_COUNT, 0x400a) \
	X(VM_EXIT_CONTROLS, 0x400c) \
	X(VM_EXIT_MSR_STORE_COUNT, 0x400e) \
	X(VM_EXIT_MSR_LOAD_COUNT, 0x4010) \
	X(VM_ENTRY_CONTROLS, 0x4012) \
	X(VM_ENTRY_MSR_LOAD_COUNT, 0x4014) \
	X(VM_ENTRY_INTR_INFO, 0x4016) \
	X(VM_ENTRY_EXCEPTION_ERROR_CODE, 0x4018) \
	X(VM_ENTRY_INSTRUCTION_LEN, 0x401a) \
	X(SECONDARY_VM_EXEC_CONTROL, 0x401e) \
	X(VM_INSTRUCTION_ERROR, 0x4400) \
	X(VM_EXIT_REASON, 0x4402) \
	X(VM_EXIT_INTR_INFO, 0x4404) \
	X(VM_EXIT_INTR_ERROR_CODE, 0x4406) \
	X(IDT_VECTORING_INFO, 0x4408) \
	X(IDT_VECTORING_ERROR_CODE, 0x440a) \
	X(VM_EXIT_INSTRUCTION_LEN, 0x440c) \
	X(VMX_INSTRUCTION_INFO, 0x440e) \
	X(GUEST_ES_LIMIT, 0x4800) \
	X(GUEST_CS_LIMIT, 0x4802) \
	X(GUEST_SS_LIMIT, 0x4804) \
	X(GUEST_DS_LIMIT, 0x4806) \
	X(GUEST_FS_LIMIT, 0x4808) \
	X(GUEST_GS_LIMIT, 0x480a) \
	X(GUEST_LDTR_LIMIT, 0x480c) \
	X(GUEST_TR_LIMIT, 0x480e) \
	X(GUEST_GDTR_LIMIT, 0x4810) \
	X(GUEST_IDTR_LIMIT, 0x4812) \
	X(GUEST_ES_AR_BYTES, 0x4814) \
	X(GUEST_CS_AR_BYTES, 0x4816) \
	X(GUEST_SS_AR_BYTES, 0x4818) \
	X(GUEST_DS_AR_BYTES, 0x481a) \
	X(GUEST_FS_AR_BYTES, 0x481c) \
	X(GUEST_GS_AR_BYTES, 0x481e) \
	X(GUEST_LDTR_AR_BYTES, 0x4820) \
	X(GUEST_TR_AR_BYTES, 0x4822) \
	X(GUEST_INTERRUPTIBILITY_INFO, 0x4824) \
	X(GUEST_ACTIVITY_STATE, 0x4826) \
	X(GUEST_SYSENTER_CS, 0x482a) \
	X(VMX_PREEMPTION_TIMER_VALUE, 0x482e) \
	X(HOST_IA32_SYSENTER_CS, 0x4c00) \
	/* natural width */ \
	X(CR0_GUEST_HOST_MASK, 0x6000) \
	X(CR4_GUEST_HOST_MASK, 0x6002) \
	X(CR0_READ_SHADOW, 0x6004) \
	X(CR4_READ_SHADOW, 0x6006) \
	X(EXIT_QUALIFICATION, 0x6400) \
	X(GUEST_LINEAR_ADDRESS, 0x640a) \
	X(GUEST_CR0, 0x6800) \
	X(GUEST_CR3, 0x6802) \
	X(GUEST_CR4, 0x6804) \
	X(GUEST_ES_BASE, 0x6806) \
	X(GUEST_CS_BASE, 0x6808) \
	X(GUEST_SS_BASE, 0x680a) \
	X(GUEST_DS_BASE, 0x680c) \
	X(GUEST_FS_BASE, 0x680e) \
	X(GUEST_GS_BASE, 0x6810) \
	X(GUEST_LDTR_BASE, 0x6812) \
	X(GUEST_TR_BASE, 0x6814) \
	X(GUEST_GDTR_BASE, 0x6816) \
	X(GUEST_IDTR_BASE, 0x6818) \
	X(GUEST_DR7, 0x681a) \
	X(GUEST_RSP, 0x681c) \
	X(GUEST_RIP, 0x681e) \
	X(GUEST_RFLAGS, 0x6820) \
	X(GUEST_PENDING_DBG_EXCEPTIONS, 0x6822) \
	X(GUEST_SYSENTER_ESP, 0x6824) \
	X(GUEST_SYSENTER_EIP, 0x6826) \
	X(HOST_CR0, 0x6c00) \
	X(HOST_CR3, 0x6c02) \
	X(HOST_CR4, 0x6c04) \
	X(HOST_FS_BASE, 0x6c06) \
	X(HOST_GS_BASE, 0x6c08) \
	X(HOST_TR_BASE, 0x6c0a) \
	X(HOST_GDTR_BASE, 0x6c0c) \
	X(HOST_IDTR_BASE, 0x6c0e) \
	X(HOST_IA32_SYSENTER_ESP, 0x6c10) \
	X(HOST_IA32_SYSENTER_EIP, 0x6c12) \
	X(HOST_RSP, 0x6c14) \
	X(HOST_RIP, 0x6c16) \
	/* end */

#define VMCS_ENUM_ENTRY(name, enc) name = enc,
enum vmcs_field { VMCS_FIELDS(VMCS_ENUM_ENTRY) };
#undef VMCS_ENUM_ENTRY

enum vmcs_width { VMCS_W16 = 0, VMCS_W64 = 1, VMCS_W32 = 2, VMCS_WNAT = 3 };
#define VMCS_FIELD_WIDTH(f) (((f) >> 13) & 3)

/* Compile-time check that a constant field has the accessor's width. */
#define VMCS_CHECK_WIDTH(f, w)                                                        \
	((void)sizeof(struct {                                                        \
		_Static_assert(VMCS_FIELD_WIDTH(f) == (w), "VMCS field width mismatch"); \
		int dummy;                                                            \
	}))

u64 vmcs_read_checked(enum vmcs_field f, const char *caller);
void vmcs_write_checked(enum vmcs_field f, u64 v, const char *caller);

#define vmcs_read16(f) (VMCS_CHECK_WIDTH(f, VMCS_W16), (u16)vmcs_read_checked(f, __func__))
#define vmcs_read32(f) (VMCS_CHECK_WIDTH(f, VMCS_W32), (u32)vmcs_read_checked(f, __func__))
#define vmcs_read64(f) (VMCS_CHECK_WIDTH(f, VMCS_W64), vmcs_read_checked(f, __func__))
#define vmcs_readn(f) (VMCS_CHECK_WIDTH(f, VMCS_WNAT), vmcs_read_checked(f, __func__))
#define vmcs_write16(f, v) (VMCS_CHECK_WIDTH(f, VMCS_W16), vmcs_write_checked(f, (u16)(v), __func__))
#define vmcs_write32(f, v) (VMCS_CHECK_WIDTH(f, VMCS_W32), vmcs_write_checked(f, (u32)(v), __func__))
#define vmcs_write64(f, v) (VMCS_CHECK_WIDTH(f, VMCS_W64), vmcs_write_checked(f, (u64)(v), __func__))
#define vmcs_writen(f, v) (VMCS_CHECK_WIDTH(f, VMCS_WNAT), vmcs_write_checked(f, (u64)(v), __func__))

const char *vmcs_field_name(enum vmcs_field f);

/* A failed VMX instruction: panic naming it, its operand, the error and the caller. */
void NORETURN vmx_instruction_failed(const char *insn, const char *operand,
				     enum vmx_status status, const char *caller);
bool vmx_vmclear(u64 vmcs_pa, const char *caller);
bool vmx_vmptrld(u64 vmcs_pa, const char *caller);

#endif
