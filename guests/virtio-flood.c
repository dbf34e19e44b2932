/* virtio-flood.elf: a hostile guest that keeps the virtio-mmio device in slot 0 (0xd0000000) as busy
 * as it can, forever, to check that jvmm stays in control (--timeout, signals, console output).
 *
 * The multiboot command line picks the attack:
 *   blk      virtio-blk: QSIZE reads of BIG bytes each into one buffer, re-posted as they complete
 *   rng      virtio-rng: QSIZE requests of 64 KiB, re-posted as they complete
 *   console  virtio-console: QSIZE transmit chains of 64 KiB ("flood\n" repeated), re-posted
 *   mmio     no device: reads N distinct unclaimed MMIO addresses (each an exit to jvmm), then exits
 *            0x10 (its statistics must stay bounded)
 * It never stops by itself except in mmio mode. Polling only: no interrupts or exceptions. */
#include "mini.h"

#define QSIZE 8
#define GUEST_NAME "virtio-flood"
#include "virtio-mmio.h"
#define DESC_ADDR 0x200000u
#define AVAIL_ADDR 0x201000u
#define USED_ADDR 0x202000u
#define HDR_ADDR 0x203000u	/* QSIZE request headers, 16 bytes apart */
#define STATUS_ADDR 0x203800u	/* QSIZE status bytes */
#define BUF_ADDR 0x400000u	/* one data buffer shared by every request */
#define BIG (32u << 20)		/* blk: 32 MiB per read (the buffer needs --mem 64M or more) */
#define CHUNK (64u << 10)	/* rng and console requests */
#define MMIO_HOLE 0xe0000000u	/* unclaimed addresses for the mmio mode */
#define MMIO_READS 300000u

struct blk_hdr { uint32_t type, reserved; uint64_t sector; };

static volatile struct desc *const desc = (volatile struct desc *)DESC_ADDR;
static volatile struct avail *const avail = (volatile struct avail *)AVAIL_ADDR;
static volatile struct used *const used = (volatile struct used *)USED_ADDR;

/* Whether the first word of a (up to a space: jvmm appends virtio_mmio.device=... words) is b. */
static int streq(const char *a, const char *b) {
	while (*a && *a != ' ' && *a == *b) a++, b++;
	return (*a == 0 || *a == ' ') && *b == 0;
}

/* Reset, accept VERSION_1 only, queue `q` with QSIZE entries, DRIVER_OK. */
static void init(uint32_t device_id, uint32_t q) {
	if (rd(R_MAGIC) != VIRTIO_MAGIC) fail("no virtio-mmio device at 0xd0000000");
	if (rd(R_DEVICE_ID) != device_id) fail("unexpected device id");
	wr(R_STATUS, 0);
	wr(R_STATUS, S_ACKNOWLEDGE | S_DRIVER);
	wr(R_DRIVER_FEATURES_SEL, 0);
	wr(R_DRIVER_FEATURES, 0);
	wr(R_DRIVER_FEATURES_SEL, 1);
	wr(R_DRIVER_FEATURES, 1);
	wr(R_STATUS, S_ACKNOWLEDGE | S_DRIVER | S_FEATURES_OK);
	zero((volatile uint8_t *)DESC_ADDR, 0x3000);
	barrier();
	wr(R_QUEUE_SEL, q);
	if (rd(R_QUEUE_NUM_MAX) < QSIZE) fail("queue too small");
	wr(R_QUEUE_NUM, QSIZE);
	wr(R_QUEUE_DESC_LOW, DESC_ADDR);
	wr(R_QUEUE_DRIVER_LOW, AVAIL_ADDR);
	wr(R_QUEUE_DEVICE_LOW, USED_ADDR);
	wr(R_QUEUE_READY, 1);
	wr(R_STATUS, S_ACKNOWLEDGE | S_DRIVER | S_FEATURES_OK | S_DRIVER_OK);
	if (!(rd(R_STATUS) & S_DRIVER_OK)) fail("DRIVER_OK refused");
}

/* Chain i: request i's descriptors (one or three), head 3*i. */
static void build(const char *mode, uint32_t i) {
	uint32_t h = 3 * i % QSIZE;
	if (streq(mode, "blk")) {
		/* three descriptors per request do not fit 8 entries for 8 requests: use 2 requests of 3 */
		volatile struct blk_hdr *hdr = (volatile struct blk_hdr *)(HDR_ADDR + 16 * i);
		hdr->type = 0; /* T_IN */
		hdr->sector = 0;
		desc[h] = (struct desc){HDR_ADDR + 16 * i, 16, F_NEXT, (uint16_t)(h + 1)};
		desc[h + 1] = (struct desc){BUF_ADDR, BIG, F_NEXT | F_WRITE, (uint16_t)(h + 2)};
		desc[h + 2] = (struct desc){STATUS_ADDR + i, 1, F_WRITE, 0};
	} else if (streq(mode, "rng")) {
		desc[i] = (struct desc){BUF_ADDR, CHUNK, F_WRITE, 0};
	} else {
		desc[i] = (struct desc){BUF_ADDR, CHUNK, 0, 0};
	}
}

static __attribute__((noreturn)) void flood(const char *mode, uint32_t device_id, uint32_t q) {
	uint32_t n = streq(mode, "blk") ? 2 : QSIZE, i;
	uint16_t avail_idx = 0, used_seen = 0;
	volatile char *buf = (volatile char *)BUF_ADDR;
	static const char line[] = "flood\n";
	if (!streq(mode, "rng") && !streq(mode, "blk"))
		for (i = 0; i < CHUNK; i++) buf[i] = line[i % 6];
	init(device_id, q);
	for (i = 0; i < n; i++) {
		build(mode, i);
		avail->ring[avail_idx % QSIZE] = (uint16_t)(streq(mode, "blk") ? 3 * i : i);
		avail_idx++;
	}
	barrier();
	avail->idx = avail_idx;
	barrier();
	wr(R_QUEUE_NOTIFY, q);
	puts("virtio-flood: flooding\n");
	for (;;) {	/* re-post every completed request at once, and notify */
		uint16_t u = used->idx;
		barrier();
		while (used_seen != u) {
			avail->ring[avail_idx % QSIZE] = (uint16_t)used->ring[used_seen % QSIZE].id;
			avail_idx++;
			used_seen++;
		}
		barrier();
		if (avail->idx != avail_idx) {
			avail->idx = avail_idx;
			barrier();
			wr(R_QUEUE_NOTIFY, q);
		}
	}
}

static __attribute__((noreturn)) void mmio_scan(void) {
	uint32_t i, sum = 0;
	for (i = 0; i < MMIO_READS; i++) sum += *(volatile uint32_t *)(MMIO_HOLE + 8 * i);
	puts("virtio-flood: read ");
	put_dec(MMIO_READS);
	puts(" unclaimed MMIO addresses (sum ");
	put_hex(sum);
	puts(")\n");
	exit_guest(EXIT_OK);
}

uint32_t kmain(uint32_t magic, const struct mb_info *mb) {
	const char *mode = "";
	if (magic != MULTIBOOT_BOOTLOADER_MAGIC) fail("not booted by a multiboot loader");
	if (mb->flags & MB_INFO_CMDLINE) mode = (const char *)mb->cmdline; /* jvmm passes --cmdline as is */
	if (streq(mode, "blk")) flood(mode, 2, 0);
	if (streq(mode, "rng")) flood(mode, 4, 0);
	if (streq(mode, "console")) flood(mode, 3, 1);
	if (streq(mode, "mmio")) mmio_scan();
	fail("unknown mode (use blk, rng, console or mmio)");
	return EXIT_FAIL;
}
