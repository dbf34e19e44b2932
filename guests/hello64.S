/* hello64.elf: an ELF64 kernel at 1 MiB entered through the Linux 64-bit boot protocol (long mode,
   RSI = zero page); prints a line on COM1 and exits with 0x10. */
#include "linux64.inc"
	.code64
	.text
	.globl	_start
_start:
	cli
	lea	msg(%rip), %rbx
	puts	%rbx
	exit_with 0x10
msg:	.asciz	"hello from long mode\n"
