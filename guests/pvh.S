/* pvh.elf: an ELF64 kernel with a Xen PVH entry note (type 18). Entered in 32-bit protected mode,
   paging off, EBX = struct hvm_start_info: prints a line, checks the start info's magic, exits 0x10
   (0x11 if the magic is wrong). */
#include "linux64.inc"
	.section .note.Xen, "a", @note
	.balign	4
	.long	4		/* namesz: "Xen\0" */
	.long	4		/* descsz */
	.long	18		/* XEN_ELFNOTE_PHYS32_ENTRY */
	.asciz	"Xen"
	.long	pvh_start

	.code32
	.text
	.globl	_start, pvh_start
_start:
pvh_start:
	cli
	mov	%ebx, %edi
	mov	$hello, %esi
	puts	%esi
	cmpl	$0x336ec578, (%edi)
	jne	bad
	mov	$ok, %esi
	puts	%esi
	exit_with 0x10
bad:
	mov	$wrong, %esi
	puts	%esi
	exit_with 0x11
hello:	.asciz	"hello from PVH\n"
ok:	.asciz	"pvh magic ok\n"
wrong:	.asciz	"pvh magic bad\n"
