/* Multiboot v1 header and 32-bit entry shared by the C multiboot guests: kmain(eax, ebx). */
#define MB_MAGIC 0x1BADB002
#define MB_FLAGS 0x00000003	/* bit 0: page-align modules, bit 1: memory info */
	.section .multiboot, "a"
	.p2align 2
	.long	MB_MAGIC
	.long	MB_FLAGS
	.long	-(MB_MAGIC + MB_FLAGS)

	.text
	.globl	_start
_start:
	cli
	cld
	mov	$stack_top, %esp
	push	%ebx
	push	%eax
	call	kmain
	/* kmain returns the exit value */
	out	%al, $0xf4
1:	cli
	hlt
	jmp	1b

	.bss
	.p2align 4
stack:	.skip	4096
stack_top:
