/* halt.bin: flat real-mode guest that prints "halting" and halts with interrupts off: a dead machine
   that never exits to the VMM (the in-kernel irqchip handles HLT), as Linux's "System halted" is. */
	.code16
	.text
	.globl _start
_start:
	cli
	mov	$0x3f8, %dx
	mov	$msg, %si
1:	mov	%cs:(%si), %al
	test	%al, %al
	jz	2f
	out	%al, %dx
	inc	%si
	jmp	1b
2:	hlt
	jmp	2b
msg:	.asciz	"halting\n"
