/*
 * The ACPI S3 sleep of the vCPU. An S3 sleep loses the processor context
 * (ACPI 6.5 16.1.3.3); on the wake event firmware passes control to the OS
 * waking vector of the FACS in real mode, CS:IP = (vector >> 4):(vector &
 * 0xf) (5.2.10, Firmware Waking Vector), with paging off and interrupts
 * off. That state is written when the guest goes to sleep (it cannot run,
 * so cannot move the vector, in between) and the vCPU stays halted until
 * the devices report the wake (devices_wakes_cpu()).
 */
#include <string.h>
#include "vmx/s3.h"
#include "vmx/cr.h"
#include "vmx/vmcs.h"
#include "devices/acpi_tables.h"
#include "devices/devices.h"
#include "arch/x86/cpu.h"

#define AR_REAL_CODE 0x9b   /* present, S, execute/read, accessed; 16-bit, byte granular */
#define AR_REAL_DATA 0x93   /* present, S, read/write, accessed */
#define AR_LDT_UNUSABLE 0x10000
#define AR_TSS16_BUSY 0x83  /* VM entry wants a usable busy TSS in TR (SDM 27.3.1.2) */
#define REAL_LIMIT 0xffff

static void real_segment(enum vmcs_field sel, enum vmcs_field base, enum vmcs_field limit,
			 enum vmcs_field ar, u16 selector, u32 access)
{
	vmcs_write_checked(sel, selector, __func__);
	vmcs_write_checked(base, (u64)selector << 4, __func__);
	vmcs_write_checked(limit, REAL_LIMIT, __func__);
	vmcs_write_checked(ar, access, __func__);
}

enum exit_action realmode_s3_sleep(struct vcpu *v)
{
	struct guest *g = v->g;
	u32 vector = acpi_waking_vector(g);
	bool gp = false;

	real_segment(GUEST_CS_SELECTOR, GUEST_CS_BASE, GUEST_CS_LIMIT, GUEST_CS_AR_BYTES,
		     (u16)(vector >> 4), AR_REAL_CODE);
	real_segment(GUEST_DS_SELECTOR, GUEST_DS_BASE, GUEST_DS_LIMIT, GUEST_DS_AR_BYTES, 0,
		     AR_REAL_DATA);
	real_segment(GUEST_ES_SELECTOR, GUEST_ES_BASE, GUEST_ES_LIMIT, GUEST_ES_AR_BYTES, 0,
		     AR_REAL_DATA);
	real_segment(GUEST_SS_SELECTOR, GUEST_SS_BASE, GUEST_SS_LIMIT, GUEST_SS_AR_BYTES, 0,
		     AR_REAL_DATA);
	real_segment(GUEST_FS_SELECTOR, GUEST_FS_BASE, GUEST_FS_LIMIT, GUEST_FS_AR_BYTES, 0,
		     AR_REAL_DATA);
	real_segment(GUEST_GS_SELECTOR, GUEST_GS_BASE, GUEST_GS_LIMIT, GUEST_GS_AR_BYTES, 0,
		     AR_REAL_DATA);
	real_segment(GUEST_LDTR_SELECTOR, GUEST_LDTR_BASE, GUEST_LDTR_LIMIT, GUEST_LDTR_AR_BYTES,
		     0, AR_LDT_UNUSABLE);
	real_segment(GUEST_TR_SELECTOR, GUEST_TR_BASE, GUEST_TR_LIMIT, GUEST_TR_AR_BYTES, 0,
		     AR_TSS16_BUSY);
	vmcs_writen(GUEST_GDTR_BASE, 0);
	vmcs_write32(GUEST_GDTR_LIMIT, REAL_LIMIT);
	vmcs_writen(GUEST_IDTR_BASE, 0);
	vmcs_write32(GUEST_IDTR_LIMIT, 0x3ff);
	vmcs_writen(GUEST_RIP, vector & 0xf);
	vmcs_writen(GUEST_RSP, 0);
	vmcs_writen(GUEST_RFLAGS, RFLAGS_FIXED);
	vmcs_writen(GUEST_DR7, 0x400);
	vmcs_write32(GUEST_INTERRUPTIBILITY_INFO, 0);
	vmcs_writen(GUEST_PENDING_DBG_EXCEPTIONS, 0);
	/* The reset values of CR0 (ET), CR4 and EFER (SDM Vol. 3A 10.1.1, Table
	 * 10-1), without CD/NW, which firmware clears before it passes control;
	 * last, so that virtual-8086 mode starts from the state above. */
	if (!guest_set_control_regs(v, CR0_ET, 0, 0, &gp))
		return EXIT_ENDED;
	if (gp) {
		guest_end(g, 0, "cannot enter the real-mode S3 wake state");
		return EXIT_ENDED;
	}
	memset(&v->regs, 0, sizeof(v->regs));
	v->event.valid = false;
	v->delivering = false;
	v->state = VCPU_HALTED;
	v->halted_if_off = false;  /* the wake event, not an interrupt, resumes it */
	return EXIT_YIELD;
}
