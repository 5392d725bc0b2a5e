/* Events into the guest: injection, re-injection, skipping (vmx/event.c). */
#ifndef VMX_EVENT_H
#define VMX_EVENT_H

#include "vmx/vmexit.h"

/* Advance RIP past the exiting instruction (ends STI/MOV SS blocking). */
void skip_instruction(struct vmexit *e);
void inject_exception(struct guest *g, int vector, bool has_error, u32 error_code);
static inline void inject_ud(struct guest *g) { inject_exception(g, 6, false, 0); }
static inline void inject_gp0(struct guest *g) { inject_exception(g, 13, true, 0); }

/* Before each entry: deliver the devices' highest interrupt if the guest
 * can take it now, else ask for an interrupt-window exit. */
void deliver_pending_interrupt(struct guest *g);
/* After each exit: an event whose delivery the exit interrupted is injected again. */
void reinject_interrupted_event(void);

enum exit_action handle_interrupt_window(struct guest *g, struct vmexit *e);
enum exit_action handle_external_interrupt(struct guest *g, struct vmexit *e);
/* HLT: the guest waits for its next interrupt (yields the CPU until then). */
enum exit_action handle_hlt(struct guest *g, struct vmexit *e);

#endif
