/* counter.bin: flat real-mode guest; prints "count N" for N = 1, 2, 3, ... on COM1 forever, with a
 * delay loop between lines. N lives in %ebx and in memory; a mismatch (state lost across a pause or
 * a snapshot) exits with EXIT_FAIL. */
#include "rm16.inc"
#define DELAY 10000
	.code16
	.text
	.globl _start
_start:
	cli
	cld
	xor	%ebx, %ebx
	movl	%ebx, count
next:
	cmpl	count, %ebx		/* the memory copy must agree with the register */
	jne	lost
	incl	%ebx
	movl	%ebx, count
	mov	$prefix, %si
	call	puts
	movl	%ebx, %eax
	call	putdec
	mov	$'\n', %al
	mov	$COM1, %dx
	out	%al, %dx
	movl	$DELAY, %ecx
1:	decl	%ecx
	jnz	1b
	jmp	next
lost:
	exit_with EXIT_FAIL

/* putdec: print %eax in decimal on COM1 (clobbers eax, ecx, edx, di). */
putdec:
	movl	$10, %ecx
	xor	%di, %di
2:	xorl	%edx, %edx
	divl	%ecx
	push	%dx
	inc	%di
	testl	%eax, %eax
	jnz	2b
3:	pop	%ax
	add	$'0', %al
	mov	$COM1, %dx
	out	%al, %dx
	dec	%di
	jnz	3b
	ret
	define_puts
prefix:	.asciz "count "
	.balign 4
count:	.long 0
