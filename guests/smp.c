/*
 * smp.elf: multiboot v1 kernel that starts the application processors with INIT + STARTUP IPIs.
 * The number of CPUs comes from "cpus=N" on the command line (default 1). APIC ids 1..N-1 are
 * assumed. Exits 0x10 when all APs reported in, 0x11 on timeout.
 */
#include "mini.h"
#include "smp.h"

#define LAPIC 0xfee00000u
#define LAPIC_SVR 0x0f0
#define LAPIC_ICR_LO 0x300
#define LAPIC_ICR_HI 0x310
#define ICR_INIT 0x00004500u		/* INIT, level assert */
#define ICR_STARTUP (0x00004600u | SIPI_VECTOR)
#define ICR_BUSY (1u << 12)

/* The bounded wait for the APs: each round re-reads the counter and writes port 0x80 (a delay
 * that is a VM exit on any host). ~100k rounds is a few seconds under instruction emulation. */
#define WAIT_ROUNDS 100000u

extern const uint8_t tramp_start[], tramp_end[];

static volatile uint32_t *lapic(uint32_t reg) { return (volatile uint32_t *)(LAPIC + reg); }
static volatile uint32_t *word(uint32_t addr) { return (volatile uint32_t *)addr; }

static uint32_t parse_cpus(const char *s) {
	for (; *s; s++) {
		if (s[0] == 'c' && s[1] == 'p' && s[2] == 'u' && s[3] == 's' && s[4] == '=') {
			uint32_t n = 0;
			const char *p = s + 5;
			while (*p >= '0' && *p <= '9' && n < 1000)
				n = n * 10 + (uint32_t)(*p++ - '0');
			return n ? n : 1;
		}
	}
	return 1;
}

static void icr_send(uint32_t apic_id, uint32_t low) {
	uint32_t i;
	*lapic(LAPIC_ICR_HI) = apic_id << 24;
	*lapic(LAPIC_ICR_LO) = low;
	for (i = 0; i < 100 && (*lapic(LAPIC_ICR_LO) & ICR_BUSY); i++)
		;
}

uint32_t kmain(uint32_t magic, const struct mb_info *mbi) {
	uint32_t n = 1, id, i, started = 0;
	const uint8_t *src;
	volatile uint8_t *dst;

	if (magic != MULTIBOOT_BOOTLOADER_MAGIC) {
		puts("bad multiboot magic\n");
		return EXIT_FAIL;
	}
	if (mbi->flags & MB_INFO_CMDLINE)
		n = parse_cpus((const char *)mbi->cmdline);
	if (n > 255)
		n = 255;
	puts("BSP: starting ");
	put_dec(n);
	puts(" cpus\n");

	for (src = tramp_start, dst = (volatile uint8_t *)TRAMP_ADDR; src < tramp_end; src++, dst++)
		*dst = *src;
	*word(AP_LOCK) = 0;
	*word(AP_COUNTER) = 0;
	*word(AP_STARTED) = 0;

	*lapic(LAPIC_SVR) |= 0x100;	/* APIC software enable */
	for (id = 1; id < n; id++) {
		icr_send(id, ICR_INIT);
		icr_send(id, ICR_STARTUP);
	}

	for (i = 0; i < WAIT_ROUNDS; i++) {
		started = *word(AP_STARTED);
		if (started == n - 1)
			break;
		outb(0x80, 0);
	}
	if (started == n - 1) {
		puts("all ");
		put_dec(n);
		puts(" cpus up\n");
		return EXIT_OK;
	}
	/* an AP may hold the lock mid-line; a torn line is acceptable on this failure path */
	puts("timeout: only ");
	put_dec(started + 1);
	puts(" of ");
	put_dec(n);
	puts(" cpus up\n");
	return EXIT_FAIL;
}
