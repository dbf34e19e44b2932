/* Tiny freestanding helpers for the multiboot guests: port I/O, COM1 output, the multiboot v1 info. */
#ifndef MINI_H
#define MINI_H
#include <stdint.h>

#define COM1 0x3f8
#define EXIT_PORT 0xf4
#define EXIT_OK 0x10
#define EXIT_FAIL 0x11
#define MULTIBOOT_BOOTLOADER_MAGIC 0x2BADB002u

static inline void outb(uint16_t port, uint8_t v) { __asm__ volatile("outb %0, %1" : : "a"(v), "Nd"(port)); }
static inline uint8_t inb(uint16_t port) { uint8_t v; __asm__ volatile("inb %1, %0" : "=a"(v) : "Nd"(port)); return v; }

void putc(char c);
void puts(const char *s);
void put_dec(uint32_t v);
void put_hex(uint32_t v);	/* 0x-prefixed, no leading zeros */
void put_hex64(uint64_t v);
__attribute__((noreturn)) void exit_guest(uint8_t code);

/* Multiboot v1 information structure (the fields we use). */
struct mb_info {
	uint32_t flags, mem_lower, mem_upper, boot_device, cmdline, mods_count, mods_addr;
	uint32_t syms[4];
	uint32_t mmap_length, mmap_addr;
	uint32_t drives_length, drives_addr, config_table, boot_loader_name;
};
struct mb_module { uint32_t mod_start, mod_end, string, reserved; };
struct mb_mmap_entry { uint32_t size; uint64_t base, length; uint32_t type; } __attribute__((packed));

#define MB_INFO_MEMORY (1u << 0)
#define MB_INFO_CMDLINE (1u << 2)
#define MB_INFO_MODS (1u << 3)
#define MB_INFO_MMAP (1u << 6)
#define MB_INFO_LOADER_NAME (1u << 9)
#endif
