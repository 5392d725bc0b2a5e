/*
 * How the CPU combines an exception raised while it delivers an earlier
 * event (SDM Vol. 3A 6.15, Tables 6-4 and 6-5), and which exceptions are
 * faults (their RFLAGS image gets RF, SDM 6.5 and 18.3.1.1). Pure logic:
 * vmx/event.c applies it to every exception it gives a guest; host tests
 * check it against the tables.
 */
#ifndef ARCH_X86_EXCEPTION_H
#define ARCH_X86_EXCEPTION_H

#include "lib/types.h"

#define X86_VEC_DF 8

enum x86_exception_outcome {
	X86_DELIVER_SECOND,     /* handled serially: the new exception is delivered */
	X86_DOUBLE_FAULT,       /* #DF with error code 0 instead */
	X86_SHUTDOWN,           /* the processor shuts down: a triple fault */
};

/*
 * first_is_exception: the event being delivered is a hardware exception
 * (interrupts, NMIs and INT n/INT3/INTO/INT1 count as benign), with vector
 * first; second: the vector of the exception raised meanwhile.
 */
enum x86_exception_outcome x86_exception_combine(bool first_is_exception, u8 first, u8 second);

/* A fault-class exception (restarts its instruction): not #DB (as injected,
 * a trap), NMI, #BP, #OF, and not the aborts #DF and #MC. */
bool x86_exception_is_fault(u8 vector);

#endif
