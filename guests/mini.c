#include "mini.h"

void putc(char c) { outb(COM1, (uint8_t)c); }

void puts(const char *s) {
	while (*s)
		putc(*s++);
}

void put_dec(uint32_t v) {
	char buf[11];
	int i = 0;
	do {
		buf[i++] = (char)('0' + v % 10);
		v /= 10;
	} while (v);
	while (i)
		putc(buf[--i]);
}

void put_hex64(uint64_t v) {
	static const char digits[] = "0123456789abcdef";
	int shift = 60;
	puts("0x");
	while (shift > 0 && ((v >> shift) & 0xf) == 0)
		shift -= 4;
	for (; shift >= 0; shift -= 4)
		putc(digits[(v >> shift) & 0xf]);
}

void put_hex(uint32_t v) { put_hex64(v); }

void exit_guest(uint8_t code) {
	outb(EXIT_PORT, code);
	for (;;)
		__asm__ volatile("cli; hlt");
}
