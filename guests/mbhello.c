/* mbhello.elf: prints what the multiboot v1 information block says, then exits with 0x10. */
#include "mini.h"

static int printable(uint8_t c) { return c >= 0x20 && c < 0x7f; }

static void print_module(uint32_t n, const struct mb_module *m) {
	const uint8_t *p = (const uint8_t *)m->mod_start;
	uint32_t size = m->mod_end - m->mod_start;
	uint32_t k = size < 8 ? size : 8, i, text = 1;
	puts("module ");
	put_dec(n);
	puts(": ");
	puts(m->string ? (const char *)m->string : "(null)");
	putc(' ');
	put_dec(size);
	puts(" bytes first=");
	for (i = 0; i < k; i++)
		if (!printable(p[i]))
			text = 0;
	for (i = 0; i < k; i++) {
		if (text) {
			putc((char)p[i]);
		} else {
			static const char digits[] = "0123456789abcdef";
			putc(digits[p[i] >> 4]);
			putc(digits[p[i] & 0xf]);
		}
	}
	putc('\n');
}

uint32_t kmain(uint32_t magic, const struct mb_info *mbi) {
	if (magic != MULTIBOOT_BOOTLOADER_MAGIC) {
		puts("bad multiboot magic ");
		put_hex(magic);
		putc('\n');
		return EXIT_FAIL;
	}
	puts("multiboot ok\n");
	if (mbi->flags & MB_INFO_CMDLINE) {
		puts("cmdline: ");
		puts((const char *)mbi->cmdline);
		putc('\n');
	}
	if (mbi->flags & MB_INFO_MEMORY) {
		puts("mem_lower: ");
		put_dec(mbi->mem_lower);
		puts(" KiB mem_upper: ");
		put_dec(mbi->mem_upper);
		puts(" KiB\n");
	}
	if (mbi->flags & MB_INFO_LOADER_NAME) {
		puts("loader: ");
		puts((const char *)mbi->boot_loader_name);
		putc('\n');
	}
	if (mbi->flags & MB_INFO_MODS) {
		const struct mb_module *m = (const struct mb_module *)mbi->mods_addr;
		uint32_t i;
		for (i = 0; i < mbi->mods_count && i < 16; i++)
			print_module(i, &m[i]);
	}
	if (mbi->flags & MB_INFO_MMAP) {
		uint32_t off = 0;
		while (off + 24 <= mbi->mmap_length) {
			const struct mb_mmap_entry *e = (const struct mb_mmap_entry *)(mbi->mmap_addr + off);
			puts("mmap: base=");
			put_hex64(e->base);
			puts(" length=");
			put_hex64(e->length);
			puts(" type=");
			put_dec(e->type);
			putc('\n');
			if (e->size < 20)
				break;
			off += e->size + 4;
		}
	}
	return EXIT_OK;
}
