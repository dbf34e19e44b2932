/*
 * pmint3.bin: flat guest (loaded at 0x10000) that enters 32-bit protected mode, prints "pm\n", loads
 * an empty IDT and executes int3. On real hardware that triple faults (KVM_EXIT_SHUTDOWN); under
 * KVM's instruction emulator it is an emulation failure (KVM_EXIT_INTERNAL_ERROR).
 */
#include "rm16.inc"
#define LOAD 0x10000
	.code16
	.text
	.globl _start
_start:
	cli
	cld
	lgdtl	gdtr
	mov	%cr0, %eax
	or	$1, %eax		/* CR0.PE */
	mov	%eax, %cr0
	ljmpl	$0x08, $(pm32 + LOAD)

	.code32
pm32:
	mov	$0x10, %ax
	mov	%ax, %ds
	mov	%ax, %es
	mov	%ax, %ss
	mov	%ax, %fs
	mov	%ax, %gs
	mov	$(stack_top + LOAD), %esp
	mov	$(msg + LOAD), %esi
	mov	$COM1, %dx
1:	lodsb
	test	%al, %al
	jz	2f
	out	%al, %dx
	jmp	1b
2:	lidt	(idtr + LOAD)
	int3
	/* Not reached unless something delivered the breakpoint: report failure. */
	mov	$EXIT_FAIL, %al
	out	%al, $EXIT_PORT
3:	hlt
	jmp	3b

	.p2align 3
gdt:	.quad	0
	.quad	0x00cf9a000000ffff	/* 0x08: flat 4 GiB code, 32-bit */
	.quad	0x00cf92000000ffff	/* 0x10: flat 4 GiB data */
gdt_end:
gdtr:	.word	gdt_end - gdt - 1
	.long	gdt + LOAD
idtr:	.word	0
	.long	0
msg:	.asciz	"pm\n"
	.p2align 4
	.skip	256
stack_top:
