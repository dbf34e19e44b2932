/* triple.bin: flat real-mode guest; loads an empty IDT and executes int3: #GP -> #DF -> shutdown. */
	.code16
	.text
	.globl _start
_start:
	cli
	lidt	idtr
	int3
1:	hlt
	jmp	1b
	.p2align 2
idtr:	.word	0		/* limit 0: every vector is out of bounds */
	.long	0
