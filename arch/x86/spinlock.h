/*
 * Spinlocks for what the CPUs share: the console, the frame pool, the heap,
 * the run queue and each guest (its run lock). Test-and-test-and-set with
 * PAUSE: the hypervisor runs with interrupts off and holds every lock for a
 * short, bounded section, so no fairness, sleeping or IRQ-saving is needed.
 * XCHG with memory is always locked (SDM Vol. 3A 9.1.2.1) and a full
 * barrier; the releasing store is a plain store: x86 does not reorder it
 * with the stores before it (SDM 9.2.2).
 */
#ifndef ARCH_X86_SPINLOCK_H
#define ARCH_X86_SPINLOCK_H

#include "lib/types.h"

typedef struct {
	u32 locked;
} spinlock_t;

static inline bool spin_trylock(spinlock_t *l)
{
	return !__atomic_exchange_n(&l->locked, 1, __ATOMIC_ACQUIRE);
}

static inline void spin_lock(spinlock_t *l)
{
	while (!spin_trylock(l))
		while (__atomic_load_n(&l->locked, __ATOMIC_RELAXED))
			asm volatile("pause" ::: "memory");
}

static inline void spin_unlock(spinlock_t *l)
{
	__atomic_store_n(&l->locked, 0, __ATOMIC_RELEASE);
}

#endif
