/* Guest loader: module command line and image into a guest (vmx/loader.c). */
#ifndef VMX_LOADER_H
#define VMX_LOADER_H

#include "vmx/guest.h"
#include "vmx/vcpu.h"

/* Parse the module's command line into cfg (defaults: guestN, 32M, EPT). */
bool loader_configure(const struct boot_module *m, int index, struct guest_config *cfg,
		      char *err, size_t err_len);
/* Copy the image into the guest's (already allocated) RAM; say how to start. */
bool loader_load(struct guest *g, const struct boot_module *m, struct guest_boot_state *bs,
		 char *err, size_t err_len);

#endif
