/*
 * Application-processor trampoline, copied by the BSP to TRAMP_ADDR. An AP starts here in real mode
 * (CS=0x0800, IP=0) after its STARTUP IPI. It uses no stack, so all APs can run it at once.
 */
#include "smp.h"
#define COM1 0x3f8
#define LIN(sym) (TRAMP_ADDR + (sym) - tramp_start)

	.section .rodata.tramp, "a"
	.code16
	.globl	tramp_start, tramp_end
tramp_start:
	cli
	cld
	xor	%ax, %ax
	mov	%ax, %ds		/* DS = 0: shared words and strings by linear address */
1:	mov	$1, %al			/* take the spinlock */
	xchgb	%al, AP_LOCK
	test	%al, %al
	jnz	1b

	mov	$1, %ebx		/* n = ++counter */
	lock xaddl %ebx, AP_COUNTER
	inc	%ebx

	mov	$COM1, %dx
	mov	$LIN(msg_ap), %si
2:	lodsb
	test	%al, %al
	jz	3f
	out	%al, %dx
	jmp	2b
3:
	/* decimal n (< 1000) without a stack: ones in CH, tens in CL, hundreds in AL */
	mov	%bx, %ax
	mov	$10, %cl
	div	%cl
	mov	%ah, %ch
	xor	%ah, %ah
	div	%cl
	mov	%ah, %cl
	test	%al, %al
	jz	4f
	add	$'0', %al
	out	%al, %dx
4:	cmp	$10, %bx
	jb	5f
	mov	%cl, %al
	add	$'0', %al
	out	%al, %dx
5:	mov	%ch, %al
	add	$'0', %al
	out	%al, %dx

	mov	$LIN(msg_up), %si
6:	lodsb
	test	%al, %al
	jz	7f
	out	%al, %dx
	jmp	6b
7:
	movb	$0, AP_LOCK		/* release (stores are ordered on x86) */
	lock incl AP_STARTED
8:	cli
	hlt
	jmp	8b

msg_ap:	.asciz	"AP "
msg_up:	.asciz	" up\n"
tramp_end:
