/* Guest loader: module command line and image into a guest (core/loader.c). */
#ifndef CORE_LOADER_H
#define CORE_LOADER_H

#include "guest/guest.h"
#include "vmx/vcpu.h"

/* Parse the module's command line into cfg (defaults: guestN, 32M, EPT). */
bool loader_configure(const struct boot_module *m, int index, struct guest_config *cfg,
		      char *err, size_t err_len);
/* Copy the image (and env, an optional environment text for it: multiboot
 * module 0, as kvm-unit-tests reads it; or initrd, a Linux kernel's initial
 * RAM disk) into the guest's RAM; say how to start. */
bool loader_load(struct guest *g, const struct boot_module *m, const struct boot_module *env,
		 const struct boot_module *initrd, struct guest_boot_state *bs, char *err,
		 size_t err_len);

/* Modules that belong to a guest rather than being one. */
enum companion_kind { COMPANION_ENV, COMPANION_INITRD, COMPANION_KINDS };

/* A module whose command line is "env_for=NAME" (or "initrd_for=NAME") is
 * the environment (initrd) of the guest NAME, not a guest: returns NAME's
 * length (0 if not such a module) and its kind. */
size_t loader_companion_target(const struct boot_module *m, const char **name,
			       enum companion_kind *kind);
/* "env_for" or "initrd_for". */
const char *loader_companion_option(enum companion_kind kind);

#endif
