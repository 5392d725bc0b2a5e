/*
 * A round trip through real mode (32-bit build, paging off): from protected mode through a
 * 16-bit code segment into real mode (CR0.PE cleared, a far jump loads CS), then back
 * (CR0.PE set, a far jump to the 32-bit code segment). In real mode: a software interrupt,
 * an exception (#DE) and an external interrupt (IRQ 11 raised through the pc-testdev line,
 * waking HLT), each delivered through the IVT (SDM Vol. 3A 20.1.4); LIDT moving the IVT;
 * IN/OUT; MOV from CR0. With EPT the CPU runs real mode itself (unrestricted guest); under
 * shadow paging umbra runs it as virtual-8086 mode and emulates what that forbids.
 * "-- big": GS keeps a 4 GiB limit into real mode ("big real mode", loaded in protected
 * mode) and real mode writes through it at offset 0x20000: the CPU does that; virtual-8086
 * mode cannot, so a shadow guest is ended saying so.
 */
#include "libguest.h"
#include "boot.h"

#define RM_BASE 0x10000u          /* where the real-mode code runs: CS = DS = SS = 0x1000 */
#define RM_SEG (RM_BASE >> 4)
#define SEL_CODE16 0x20           /* 16-bit code, base RM_BASE, limit 0xffff */
#define SEL_DATA16 0x28           /* 16-bit data, base RM_BASE, limit 0xffff, B=0 */

extern const u8 rm_start[], rm_end[];
extern const u8 res_int40[], res_int41[], res_de[], res_irq[], res_after_hlt[], res_cmos[],
	res_cr0[], big_mode[];
void rm_roundtrip(void);

/* Offset of a blob symbol: the blob runs copied at RM_BASE. */
#define RM_VAR(sym) (*(volatile u16 *)(unsigned long)(RM_BASE + (u32)((sym) - rm_start)))

static u64 gdt[6] __attribute__((aligned(8))) = {
	0,
	0x00cf9a000000ffffull,        /* SEL_CODE32 */
	0x00cf92000000ffffull,        /* SEL_DATA */
	0x00af9a000000ffffull,        /* SEL_CODE64 */
	0x00009b010000ffffull,        /* SEL_CODE16: base 0x10000, 16-bit */
	0x000093010000ffffull,        /* SEL_DATA16: base 0x10000, B=0 */
};
struct descriptor_ptr rm_gdt_desc = { sizeof(gdt) - 1, 0 };
struct descriptor_ptr rm_ivt_desc = { 0x3ff, 0 };
u32 rm_saved_esp;

asm(
	".text\n"
	".code32\n"
	".global rm_roundtrip\n"
	"rm_roundtrip:\n"
	"	push %ebp; push %ebx; push %esi; push %edi\n"
	"	mov %esp, rm_saved_esp\n"
	"	lgdt rm_gdt_desc\n"
	"	lidt rm_ivt_desc\n"
	"	ljmp $0x20, $0\n"             /* SEL_CODE16:0 = rm_start, copied to RM_BASE */
	"pm_return:\n"
	"	mov $0x10, %eax\n"
	"	mov %eax, %ds; mov %eax, %es; mov %eax, %fs; mov %eax, %gs; mov %eax, %ss\n"
	"	mov rm_saved_esp, %esp\n"
	"	pop %edi; pop %esi; pop %ebx; pop %ebp\n"
	"	ret\n"

	".section .rodata\n"
	".code16\n"
	".global rm_start, rm_end, res_int40, res_int41, res_de, res_irq, res_after_hlt\n"
	".global res_cmos, res_cr0, big_mode\n"
	"rm_start:\n"
	"	mov $0x28, %ax\n"              /* 16-bit protected mode: 16-bit data segments */
	"	mov %ax, %ds; mov %ax, %es; mov %ax, %ss; mov %ax, %fs; mov %ax, %gs\n"
	"	cmpw $0, big_mode - rm_start\n"
	"	je 2f\n"
	"	mov $0x10, %ax; mov %ax, %gs\n"   /* flat, 4 GiB limit: kept into real mode */
	"2:	mov %cr0, %eax; and $~1, %eax; mov %eax, %cr0\n"
	"	ljmp $0x1000, $(1f - rm_start)\n"
	"1:	mov $0x1000, %ax; mov %ax, %ds; mov %ax, %es; mov %ax, %ss\n"
	"	xor %ax, %ax; mov %ax, %fs; mov %ax, %gs\n"   /* real mode: the limit stays */
	"	mov $0xff00, %sp\n"
	"	cmpw $0, big_mode - rm_start\n"
	"	je 3f\n"
	"	addr32 movl $0x12345678, %gs:0x20000\n"
	"3:\n"
	/* IVT entries through FS = 0: vectors 0 (#DE), 0x40, 0x73 (IRQ 11, slave base 0x70). */
	"	movw $(h_de - rm_start), %fs:0x0; movw $0x1000, %fs:0x2\n"
	"	movw $(h_int40 - rm_start), %fs:0x100; movw $0x1000, %fs:0x102\n"
	"	movw $(h_irq11 - rm_start), %fs:0x1cc; movw $0x1000, %fs:0x1ce\n"
	"	int $0x40\n"
	"	xor %dx, %dx; mov $1, %ax; xor %bl, %bl; div %bl\n"   /* #DE; the handler skips it */
	/* A second IVT at 0x10400 (LIDT in real mode), vector 0x41 there only. */
	"	movw $(h_int41 - rm_start), 0x504; movw $0x1000, 0x506\n"
	"	lidt (ivt2 - rm_start)\n"
	"	int $0x41\n"
	"	lidt (ivt0 - rm_start)\n"
	/* IRQ 11 latched with interrupts off, then STI; HLT: the interrupt wakes the HLT. */
	"	cli\n"
	"	mov $0x200b, %dx; mov $1, %al; out %al, %dx; xor %al, %al; out %al, %dx\n"
	"	sti; hlt\n"
	"	cli\n"
	"	incw res_after_hlt - rm_start\n"
	"	mov $0x0d, %al; out %al, $0x70; in $0x71, %al; mov %al, res_cmos - rm_start\n"
	"	mov %cr0, %eax; mov %ax, res_cr0 - rm_start\n"
	"	mov %cr0, %eax; or $1, %eax; mov %eax, %cr0\n"
	"	ljmpl $0x08, $pm_return\n"
	"h_int40: incw %cs:(res_int40 - rm_start); iret\n"
	"h_int41: incw %cs:(res_int41 - rm_start); iret\n"
	"h_de:	incw %cs:(res_de - rm_start)\n"
	"	push %bp; mov %sp, %bp; addw $2, 2(%bp); pop %bp; iret\n"   /* past the 2-byte DIV */
	"h_irq11: incw %cs:(res_irq - rm_start)\n"
	"	push %ax; mov $0x20, %al; out %al, $0xa0; out %al, $0x20; pop %ax; iret\n"
	"	.balign 4\n"
	"ivt0:	.word 0x3ff; .long 0\n"
	"ivt2:	.word 0x3ff; .long 0x10400\n"
	"res_int40: .word 0\n"
	"res_int41: .word 0\n"
	"res_de: .word 0\n"
	"res_irq: .word 0\n"
	"res_after_hlt: .word 0\n"
	"res_cmos: .word 0\n"
	"res_cr0: .word 0xffff\n"
	"big_mode: .word 0\n"
	"rm_end:\n"
	".code32\n"
	".text\n");

int main(void)
{
	struct descriptor_ptr pm_idt;
	u8 *dst = (u8 *)(unsigned long)RM_BASE;

	for (const u8 *p = rm_start; p < rm_end; p++)
		*dst++ = *p;
	RM_VAR(big_mode) = cmdline_has("big");
	rm_gdt_desc.base = (unsigned long)gdt;
	sidt(&pm_idt);
	printf("real mode: %u bytes of 16-bit code at %#x\n", (unsigned)(rm_end - rm_start), RM_BASE);
	rm_roundtrip();
	lidt(&pm_idt);
	report(true, "back in protected mode after a real-mode round trip");
	report(read_cr0() & 1, "CR0.PE is set again");
	report(RM_VAR(res_int40) == 1, "real mode: INT 0x40 through the IVT (%u)", RM_VAR(res_int40));
	report(RM_VAR(res_de) == 1, "real mode: DIV by 0 is #DE through IVT vector 0 (%u)",
	       RM_VAR(res_de));
	report(RM_VAR(res_int41) == 1, "real mode: LIDT moves the IVT, INT 0x41 through it (%u)",
	       RM_VAR(res_int41));
	report(RM_VAR(res_irq) == 1 && RM_VAR(res_after_hlt) == 1,
	       "real mode: IRQ 11 (pc-testdev line, vector 0x73) wakes STI; HLT through the IVT "
	       "(%u, after HLT %u)", RM_VAR(res_irq), RM_VAR(res_after_hlt));
	report((RM_VAR(res_cmos) & 0xff) == 0x80, "real mode: OUT/IN, CMOS register D reads %#x",
	       RM_VAR(res_cmos) & 0xff);
	report(!(RM_VAR(res_cr0) & 1) && (RM_VAR(res_cr0) & 0x10),
	       "real mode: MOV from CR0 reads PE=0, ET=1 (%#x)", RM_VAR(res_cr0));
	if (RM_VAR(big_mode))
		report(*(volatile u32 *)0x20000 == 0x12345678,
		       "big real mode: a write through GS at offset 0x20000 (%#x)",
		       *(volatile u32 *)0x20000);
	return report_summary();
}
