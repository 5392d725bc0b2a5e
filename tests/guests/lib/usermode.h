/*
 * Constants shared by lib/usermode.S and lib/usermode.c (no C, so assembly can include it):
 * the ring-3 selectors and TSS that lib/usermode.c appends to the library's GDT (lib/boot.h
 * has the first four), and the vector ring 3 uses to come back to the kernel.
 */
#ifndef GUEST_USERMODE_H
#define GUEST_USERMODE_H

#define SEL_UCODE32 0x20
#define SEL_UDATA 0x28
#define SEL_UCODE64 0x30
#define SEL_TSS 0x38		/* two slots in 64-bit mode (SDM Vol. 3A 8.2.3) */
#define GDT_ENTRIES 9

/* A reserved exception vector without error code, never raised by the CPU: `int` from CPL3. */
#define USER_RETURN_VECTOR 31

#endif
