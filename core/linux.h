/* Loading a Linux kernel into a guest by the x86 64-bit boot protocol (core/linux.c). */
#ifndef CORE_LINUX_H
#define CORE_LINUX_H

#include "core/bzimage.h"
#include "guest/guest.h"
#include "vmx/vcpu.h"

/*
 * data/size: a bzImage (elf NULL: its kernel is copied in here) or a
 * vmlinux whose segments the caller has loaded (elf: its parse). initrd:
 * the initrd_for= module or NULL. Writes the zero page, command line
 * (the guest's args), GDT and initrd, and fills bs for the 64-bit entry
 * except its paging (the caller's identity map, CR3).
 */
bool linux_load(struct guest *g, const u8 *data, u64 size, const struct guest_image *elf,
		const struct boot_module *initrd, struct guest_boot_state *bs, char *err,
		size_t err_len);

#endif
