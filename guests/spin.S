/* spin.bin: flat real-mode guest that spins forever with interrupts off (timeout / kick tests). */
	.code16
	.text
	.globl _start
_start:
	cli
1:	jmp	1b
