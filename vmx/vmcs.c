/*
 * Checked VMCS instructions (VMREAD, VMWRITE, VMCLEAR, VMPTRLD): a failure
 * is a hypervisor bug, reported with the instruction, the field, the
 * VM-instruction error (SDM 31.4) and the caller, and stops the machine.
 */
#include "vmx/vmcs.h"
#include "arch/x86/panic.h"

#define VMCS_NAME_ENTRY(name, enc) { enc, #name },
static const struct {
	u32 enc;
	const char *name;
} vmcs_names[] = { VMCS_FIELDS(VMCS_NAME_ENTRY) };

const char *vmcs_field_name(enum vmcs_field f)
{
	for (size_t i = 0; i < ARRAY_SIZE(vmcs_names); i++)
		if (vmcs_names[i].enc == (u32)f)
			return vmcs_names[i].name;
	return "unknown field";
}

static u64 vm_instruction_error(void)
{
	u64 err = 0;

	vmread_raw(VM_INSTRUCTION_ERROR, &err);
	return err;
}

void NORETURN vmx_instruction_failed(const char *insn, const char *operand,
					    enum vmx_status st, const char *caller)
{
	if (st == VMX_FAIL_VALID)
		panic("%s %s failed in %s: VM-instruction error %llu", insn, operand, caller,
		      (unsigned long long)vm_instruction_error());
	panic("%s %s failed in %s: no current VMCS (VMfailInvalid)", insn, operand, caller);
}

u64 vmcs_read_checked(enum vmcs_field f, const char *caller)
{
	u64 v = 0;
	enum vmx_status st = vmread_raw(f, &v);

	if (st != VMX_OK)
		vmx_instruction_failed("VMREAD", vmcs_field_name(f), st, caller);
	return v;
}

void vmcs_write_checked(enum vmcs_field f, u64 v, const char *caller)
{
	enum vmx_status st = vmwrite_raw(f, v);

	if (st != VMX_OK)
		vmx_instruction_failed("VMWRITE", vmcs_field_name(f), st, caller);
}

bool vmx_vmclear(u64 vmcs_pa, const char *caller)
{
	enum vmx_status st = vmclear_raw(vmcs_pa);

	if (st != VMX_OK)
		vmx_instruction_failed("VMCLEAR", "", st, caller);
	return true;
}

bool vmx_vmptrld(u64 vmcs_pa, const char *caller)
{
	enum vmx_status st = vmptrld_raw(vmcs_pa);

	if (st != VMX_OK)
		vmx_instruction_failed("VMPTRLD", "", st, caller);
	return true;
}

