/*
 * triple.bin: flat real-mode guest; loads an empty IDT (limit 0) and executes int3. On hardware that is
 * #GP -> #DF -> triple fault (KVM_EXIT_SHUTDOWN). KVM's instruction emulator delivers real-mode
 * interrupts through the IVT without checking the IDT limit, so as a fallback the IVT entries for
 * vectors 3, 8 and 13 point at a handler that prints "int3 delivered despite empty IDT\n" and exits
 * with 0x11 instead of running off into zeroed memory.
 */
#include "rm16.inc"
	.code16
	.text
	.globl _start
_start:
	cli
	cld
	xor	%ax, %ax
	mov	%ax, %es
	mov	$fallback, %ax
	mov	%ax, %es:(3 * 4)
	mov	%ax, %es:(8 * 4)
	mov	%ax, %es:(13 * 4)
	mov	%cs, %ax
	mov	%ax, %es:(3 * 4 + 2)
	mov	%ax, %es:(8 * 4 + 2)
	mov	%ax, %es:(13 * 4 + 2)
	lidt	idtr
	int3
fallback:
	mov	%cs, %ax
	mov	%ax, %ds
	mov	$msg, %si
	call	puts
	exit_with EXIT_FAIL
	define_puts
	.p2align 2
idtr:	.word	0		/* limit 0: every vector is out of bounds */
	.long	0
msg:	.asciz	"int3 delivered despite empty IDT\n"
