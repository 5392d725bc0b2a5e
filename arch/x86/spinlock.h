/*
 * Spinlocks for what the CPUs share: the console, the frame pool, the heap,
 * the run queue and each guest (its run lock). Test-and-test-and-set with
 * PAUSE: the hypervisor runs with interrupts off and holds every lock for a
 * short, bounded section, so no fairness, sleeping or IRQ-saving is needed.
 * XCHG is a full barrier (SDM Vol. 3A 9.2.3), the releasing store a plain
 * release: x86 keeps stores in order (SDM 9.2.2).
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
