/* Guest set-up and the run loop. */
#include "vmx/guest.h"
#include "arch/x86/cpu.h"
#include "lib/log.h"

enum run_status guests_run(const struct boot_info *bi)
{
	if (!(cpuid(1, 0).ecx & (1u << 5))) {
		pr_err("this CPU has no VMX (Intel VT-x): CPUID.1:ECX[5] is 0; cannot run guests");
		return RUN_NO_VMX;
	}
	pr_info("%d guest module(s)", bi->module_count);
	return RUN_PASS;
}
