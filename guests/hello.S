/* hello.bin: flat real-mode guest; prints a greeting on COM1 and exits with 0x10. */
#include "rm16.inc"
	.code16
	.text
	.globl _start
_start:
	cli
	cld
	mov	$msg, %si
	call	puts
	exit_with EXIT_OK
	define_puts
msg:	.asciz "Hello from a jvmm guest\n"
