/* gdbtest64.elf: the target of GdbStubTest. An ELF64 kernel at 1 MiB (64-bit boot protocol, long
   mode, identity-mapped) whose symbols gdb reads: it prints a line, reaches `checkpoint` (where the
   test's debugger stops, sets R12 and rewrites `value`), prints R12's low byte and the string at
   `value`, passes `last`, and exits with 0x10 (status 33). Untouched it prints "reg=A" and "mem=old". */
#include "linux64.inc"
	.code64
	.text
	.globl	_start
_start:
	cli
	lea	hello(%rip), %rbx
	puts	%rbx
	mov	$'A', %r12d
	.globl	checkpoint
checkpoint:
	nop
	nop
	nop
	lea	regmsg(%rip), %rbx
	puts	%rbx
	mov	%r12b, %al
	outb	%al, %dx
	mov	$'\n', %al
	outb	%al, %dx
	lea	memmsg(%rip), %rbx
	puts	%rbx
	lea	value(%rip), %rbx
	puts	%rbx
	.globl	last
last:
	nop
	exit_with 0x10
hello:	.asciz	"gdb guest: start\n"
regmsg:	.asciz	"reg="
memmsg:	.asciz	"mem="
	.globl	value
value:	.asciz	"old\n"
