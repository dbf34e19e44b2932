/* echo.bin: flat real-mode guest; programs the UART, then echoes COM1 input until 'q'. */
#include "rm16.inc"
	.code16
	.text
	.globl _start
_start:
	cli
	cld
	/* 115200 8N1, FIFOs on and cleared, no interrupts, DTR|RTS. */
	mov	$COM1+3, %dx		/* LCR: DLAB=1 */
	mov	$0x80, %al
	out	%al, %dx
	mov	$COM1+0, %dx		/* DLL = 1 */
	mov	$0x01, %al
	out	%al, %dx
	mov	$COM1+1, %dx		/* DLM = 0 */
	xor	%al, %al
	out	%al, %dx
	mov	$COM1+3, %dx		/* LCR: 8 data bits, no parity, 1 stop, DLAB=0 */
	mov	$0x03, %al
	out	%al, %dx
	mov	$COM1+1, %dx		/* IER = 0 */
	xor	%al, %al
	out	%al, %dx
	mov	$COM1+2, %dx		/* FCR: enable, clear RX and TX FIFOs */
	mov	$0x07, %al
	out	%al, %dx
	mov	$COM1+4, %dx		/* MCR: DTR | RTS */
	mov	$0x03, %al
	out	%al, %dx

	mov	$ready, %si
	call	puts
loop:
	mov	$COM1+5, %dx		/* LSR: wait for Data Ready (bit 0) */
	in	%dx, %al
	test	$0x01, %al
	jz	loop
	mov	$COM1, %dx		/* RBR -> THR */
	in	%dx, %al
	out	%al, %dx
	cmp	$'q', %al
	jne	loop
	mov	$bye, %si
	call	puts
	exit_with EXIT_OK
	define_puts
ready:	.asciz "echo ready\n"
bye:	.asciz "\nbye\n"
