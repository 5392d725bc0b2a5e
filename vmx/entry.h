/*
 * VM entry and exit in assembly (vmx/entry.S) and the layout it relies on:
 * the offsets of struct guest_regs (guest/guest.h) and the HOST_RSP field
 * encoding. entry.S includes this file for the numbers; C code checks them
 * against the real struct and enum at compile time, so they cannot drift.
 */
#ifndef VMX_ENTRY_H
#define VMX_ENTRY_H

#define ENTRY_HOST_RSP 0x6c14
#define R_RAX 0
#define R_RCX 8
#define R_RDX 16
#define R_RBX 24
#define R_RSP 32
#define R_RBP 40
#define R_RSI 48
#define R_RDI 56
#define R_R8 64
#define R_R9 72
#define R_R10 80
#define R_R11 88
#define R_R12 96
#define R_R13 104
#define R_R14 112
#define R_R15 120
#define R_CR2 128

#ifndef __ASSEMBLER__
#include <stddef.h>
#include "guest/guest.h"
#include "vmx/vmcs.h"

_Static_assert(ENTRY_HOST_RSP == HOST_RSP, "entry.S writes HOST_RSP by its encoding");
#define ENTRY_REG_AT(field, off) \
	_Static_assert(offsetof(struct guest_regs, field) == (off), "entry.S: " #field)
ENTRY_REG_AT(rax, R_RAX);
ENTRY_REG_AT(rcx, R_RCX);
ENTRY_REG_AT(rdx, R_RDX);
ENTRY_REG_AT(rbx, R_RBX);
ENTRY_REG_AT(rsp, R_RSP);
ENTRY_REG_AT(rbp, R_RBP);
ENTRY_REG_AT(rsi, R_RSI);
ENTRY_REG_AT(rdi, R_RDI);
ENTRY_REG_AT(r8, R_R8);
ENTRY_REG_AT(r9, R_R9);
ENTRY_REG_AT(r10, R_R10);
ENTRY_REG_AT(r11, R_R11);
ENTRY_REG_AT(r12, R_R12);
ENTRY_REG_AT(r13, R_R13);
ENTRY_REG_AT(r14, R_R14);
ENTRY_REG_AT(r15, R_R15);
ENTRY_REG_AT(cr2, R_CR2);

/* Load the guest's registers and VMLAUNCH (launched 0) or VMRESUME; on a VM
 * exit store them back and return 0; VMfailInvalid 1, VMfailValid 2. */
int vmx_enter(struct guest_regs *regs, int launched);
/* HOST_RIP: where the CPU continues after a VM exit. */
extern char vmx_exit_entry[];
#endif

#endif
