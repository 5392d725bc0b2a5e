/* Guest memory: allocation, EPT, and translation helpers for exit handlers. */
#ifndef VMX_MEMORY_H
#define VMX_MEMORY_H

#include "vmx/guest.h"

/* Allocate and zero g->cfg.mem bytes of RAM and build the EPT over it. */
bool guest_memory_init(struct guest *g);
void guest_memory_free(struct guest *g);
/* Translate a guest linear address with the guest's current paging mode. */
bool guest_linear_to_gpa(struct guest *g, u64 la, bool write, u64 *gpa);
/* Copy into guest-physical memory (the loader); false if outside RAM. */
bool guest_copy_to(struct guest *g, u64 gpa, const void *src, u64 len);

#endif
