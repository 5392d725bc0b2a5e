/* Events into the guest: injection, re-injection, skipping (vmx/event.c). */
#ifndef VMX_EVENT_H
#define VMX_EVENT_H

#include "vmx/vmexit.h"

/*
 * Raise an exception in the guest at the next entry, merged with the event
 * pending there (one whose delivery the exit cut short, or one raised
 * before) as the CPU would (SDM Table 6-5): #DF, or the end of the guest as
 * a triple fault. Every exception the hypervisor gives a guest goes here.
 */
void inject_exception(struct vcpu *v, int vector, bool has_error, u32 error_code);
static inline void inject_ud(struct vcpu *v) { inject_exception(v, 6, false, 0); }
static inline void inject_gp0(struct vcpu *v) { inject_exception(v, 13, true, 0); }

/* Advance RIP past the exiting instruction: ends STI/MOV SS blocking and
 * leaves the single-step #DB the guest's RFLAGS.TF asks for. */
void skip_instruction(struct vmexit *e);
/* The parts of that for an instruction the hypervisor carries on with (a
 * REP string instruction it did some iterations of). */
void end_interrupt_shadow(void);
void single_step_trap(void);

/* After each exit: the event whose delivery the exit interrupted becomes
 * the pending one (g->delivering says so); virtual-NMI blocking a faulting
 * IRET had lifted is put back. */
void event_exit(struct vcpu *v, const struct vmexit *e);
/* During an exit that interrupted an event's delivery, an access the
 * delivery made (what, at gpa) cannot be emulated: end the guest, saying so. */
enum exit_action event_delivery_unemulatable(struct vcpu *v, struct vmexit *e, u64 gpa,
					     const char *what);
/* Before each entry: the pending event, else an NMI, else the devices'
 * highest interrupt if the guest can take it now; window exits ask again
 * for what must wait. */
void event_entry(struct vcpu *v);

/*
 * A task-switch exit through a task gate (SDM Vol. 3C 28.2.4): the event the gate was
 * delivering. *skip: bytes of the software interrupt or exception instruction (the old
 * task resumes after it); the error code goes on the new task's stack. false: no event
 * (call, jmp, iret).
 */
bool event_task_gate(struct vcpu *v, u32 *skip, bool *has_error, u32 *error_code);
/* The task switch happened: the gate's event is delivered (an NMI's blocks NMIs until
 * the next IRET, SDM 6.7.1); an iret that switched tasks unblocks them. */
void event_task_switched(struct vcpu *v, bool iret);

enum exit_action handle_interrupt_window(struct vcpu *v, struct vmexit *e);
enum exit_action handle_external_interrupt(struct vcpu *v, struct vmexit *e);
/* HLT: the guest waits for its next interrupt (yields the CPU until then). */
enum exit_action handle_hlt(struct vcpu *v, struct vmexit *e);

#endif
