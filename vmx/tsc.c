/*
 * A guest's clock on VMX: with "use TSC offsetting" its RDTSC returns the
 * host TSC plus the VMCS TSC offset, which moves when the guest writes its
 * TSC, and back when time the guest must not see has passed (waiting for
 * the CPU, host work such as page-ageing scans).
 */
#include "vmx/tsc.h"
#include "vmx/vmcs.h"

void guest_set_tsc_offset(struct vcpu *v, u64 offset)
{
	struct guest *g = v->g;

	g->tsc_offset = offset;
	vmcs_write64(TSC_OFFSET, offset);
}
