/* reset.bin: flat real-mode guest; asks the i8042 to pulse the reset line (0xfe to port 0x64). */
#include "rm16.inc"
	.code16
	.text
	.globl _start
_start:
	cli
	cld
	mov	$msg, %si
	call	puts
	mov	$0xfe, %al
	out	%al, $0x64
1:	hlt
	jmp	1b
	define_puts
msg:	.asciz "resetting\n"
