/* panic.bin: flat real-mode guest that reports a kernel panic the ways Linux does, chosen by what it
   reads first on COM1 (the test feeds it): 'p' writes PANICKED to the pvpanic port 0x505, 'l' prints
   Linux's panic line; then it resets the machine through the i8042 as panic=-1 would reboot. 'r'
   prints the panic line and then a slow report (twelve lines, a pause of 15000 port reads
   before each, as a backtrace comes over a slow serial line) and spins without resetting: the run
   must end after the report, not in the middle of it. */
#include "rm16.inc"
	.code16
	.text
	.globl _start
_start:
	cli
	cld
	mov	$COM1+5, %dx		/* wait for the first input byte (LSR.DR) */
1:	in	%dx, %al
	test	$1, %al
	jz	1b
	mov	$COM1, %dx
	in	%dx, %al
	cmp	$'p', %al
	je	5f
	cmp	$'r', %al
	jne	2f
	mov	$msg, %si
	call	puts
	mov	$12, %bx
6:	mov	$15000, %cx		/* a pause: port reads are exits, slow on any VMM */
7:	in	$0x80, %al
	loop	7b
	mov	$line, %si
	call	puts
	dec	%bx
	jnz	6b
	mov	$end, %si
	call	puts
8:	jmp	8b
5:	mov	$0x505, %dx		/* pvpanic: PANICKED */
	mov	$1, %al
	out	%al, %dx
	jmp	3f
2:	mov	$msg, %si
	call	puts
3:	mov	$0xfe, %al		/* i8042: pulse reset, as a reboot after the panic */
	out	%al, $0x64
4:	hlt
	jmp	4b
	define_puts
line:	.asciz "  a line of the panic report\n"
end:	.asciz "end of the panic report\n"
msg:	.asciz "Kernel panic - not syncing: Attempted to kill init! exitcode=0x00000100\n"
