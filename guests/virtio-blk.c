/* virtio-blk.elf: drives the virtio-mmio (version 2) block device at 0xd0000000 by polling.
 *
 * Reads sector 0 (must start with "JVMM-DISK-TEST"), writes sector 1 and flushes, asks for the
 * device id, then misbehaves on purpose: a descriptor loop and a buffer outside guest RAM must be
 * refused (DEVICE_NEEDS_RESET, or an IOERR status for the latter) and the device must work again
 * after a reset. No interrupts or exceptions: every wait polls the used ring (or the Status
 * register) and writes port 0x80 per round, so it is bounded in time on any host.
 * Exits 0x10 when every check passed, 0x11 on the first failure ("virtio-blk: FAIL <what>"). */
#include "mini.h"

#define VIRTIO_ID_BLOCK 2

/* block request types and status values */
#define T_IN 0
#define T_OUT 1
#define T_FLUSH 4
#define T_GET_ID 8
#define BLK_S_OK 0
#define BLK_S_IOERR 1
#define ID_BYTES 20

/* split virtqueue: 8 entries, rings and buffers at fixed addresses in guest RAM (above the kernel) */
#define QSIZE 8
#define GUEST_NAME "virtio-blk"
#include "virtio-mmio.h"
#define DESC_ADDR 0x200000u
#define AVAIL_ADDR 0x201000u
#define USED_ADDR 0x202000u
#define HDR_ADDR 0x203000u	/* 16-byte request header */
#define STATUS_ADDR 0x203100u	/* 1-byte status */
#define ID_ADDR 0x203200u	/* GET_ID buffer */
#define DATA_ADDR 0x204000u	/* 512-byte sector buffer */
#define BAD_ADDR 0xf0000000u	/* in the MMIO hole: not RAM */
#define SECTOR 512

struct blk_hdr { uint32_t type, reserved; uint64_t sector; };

/* Each wait round polls once and writes port 0x80 (a VM exit on any host): ~100k rounds is
 * seconds under instruction emulation and still milliseconds or more on hardware. */
#define WAIT_ROUNDS 100000u

static volatile struct desc *const desc = (volatile struct desc *)DESC_ADDR;
static volatile struct avail *const avail = (volatile struct avail *)AVAIL_ADDR;
static volatile struct used *const used = (volatile struct used *)USED_ADDR;
static volatile struct blk_hdr *const hdr = (volatile struct blk_hdr *)HDR_ADDR;
static volatile uint8_t *const blk_status = (volatile uint8_t *)STATUS_ADDR;
static volatile uint8_t *const data = (volatile uint8_t *)DATA_ADDR;
static volatile uint8_t *const idbuf = (volatile uint8_t *)ID_ADDR;

static uint16_t avail_idx, used_seen;	/* driver-side ring positions */

static const char disk_magic[] = "JVMM-DISK-TEST";
static const char pattern[] = "GUEST-WROTE-THIS";	/* 16 bytes, repeated over sector 1 */

/* Status = 0, then wait until it reads back 0 (virtio-mmio: reset completes when it does). */
static void reset(void) {
	uint32_t i;
	wr(R_STATUS, 0);
	for (i = 0; i < WAIT_ROUNDS && rd(R_STATUS) != 0; i++)
		outb(0x80, 0);
	if (rd(R_STATUS) != 0)
		fail("reset: Status does not read back 0");
}

/* Step 1: identify, reset, negotiate VERSION_1 only, set up queue 0 with QSIZE entries, DRIVER_OK. */
static void init(int verbose) {
	uint32_t v, st, max, lo, hi, gen;

	if ((v = rd(R_MAGIC)) != VIRTIO_MAGIC)
		fail_hex("bad magic", v);
	if ((v = rd(R_VERSION)) != 2)
		fail_hex("MMIO version is not 2:", v);
	if ((v = rd(R_DEVICE_ID)) != VIRTIO_ID_BLOCK)
		fail_hex("device id is not 2 (block):", v);
	if (verbose)
		puts("virtio-blk: magic ok, version 2, device id 2 (block)\n");

	reset();
	wr(R_STATUS, S_ACKNOWLEDGE);
	wr(R_STATUS, S_ACKNOWLEDGE | S_DRIVER);

	wr(R_DEVICE_FEATURES_SEL, 1);
	hi = rd(R_DEVICE_FEATURES);
	wr(R_DEVICE_FEATURES_SEL, 0);
	lo = rd(R_DEVICE_FEATURES);
	if (!(hi & 1))
		fail("VIRTIO_F_VERSION_1 not offered");
	wr(R_DRIVER_FEATURES_SEL, 0);
	wr(R_DRIVER_FEATURES, 0);
	wr(R_DRIVER_FEATURES_SEL, 1);
	wr(R_DRIVER_FEATURES, 1);	/* bit 32: VIRTIO_F_VERSION_1, nothing else */
	wr(R_STATUS, S_ACKNOWLEDGE | S_DRIVER | S_FEATURES_OK);
	st = rd(R_STATUS);
	if (!(st & S_FEATURES_OK))
		fail_hex("FEATURES_OK did not stick, status", st);
	if (verbose) {
		puts("virtio-blk: features offered ");
		put_hex(hi);
		putc(':');
		put_hex(lo);
		puts(", accepted VERSION_1 only, FEATURES_OK\n");
	}

	wr(R_QUEUE_SEL, 0);
	if (rd(R_QUEUE_READY) != 0)
		fail("queue 0 already ready after reset");
	max = rd(R_QUEUE_NUM_MAX);
	if (max < QSIZE)
		fail_hex("QueueNumMax below 8:", max);
	avail_idx = used_seen = 0;
	setup_queue(DESC_ADDR, AVAIL_ADDR, USED_ADDR);
	wr(R_STATUS, S_ACKNOWLEDGE | S_DRIVER | S_FEATURES_OK | S_DRIVER_OK);
	st = rd(R_STATUS);
	if ((st & (S_DRIVER_OK | S_NEEDS_RESET)) != S_DRIVER_OK)
		fail_hex("DRIVER_OK refused, status", st);
	if (verbose) {
		puts("virtio-blk: queue 0: ");
		put_dec(QSIZE);
		puts(" entries (max ");
		put_dec(max);
		puts("), DRIVER_OK\n");

		do {	/* capacity is a u64 read as two words: retry if the config changed in between */
			gen = rd(R_CONFIG_GENERATION);
			lo = rd(R_CONFIG);
			hi = rd(R_CONFIG + 4);
		} while (gen != rd(R_CONFIG_GENERATION));
		puts("virtio-blk: capacity ");
		put_dec(lo);
		if (hi) {
			puts(" + ");
			put_hex(hi);
			puts("<<32");
		}
		puts(" sectors\n");
		if (hi == 0 && lo < 2)
			fail("capacity below 2 sectors");
	}
}

static void set_desc(uint16_t i, uint32_t addr, uint32_t len, uint16_t flags, uint16_t next) {
	desc[i].addr = addr;
	desc[i].len = len;
	desc[i].flags = flags;
	desc[i].next = next;
}

/* Makes the chain at `head` available and notifies queue 0. */
static void submit(uint16_t head) {
	avail->ring[avail_idx & (QSIZE - 1)] = head;
	barrier();	/* the ring entry before the index (x86 keeps stores in order) */
	avail->idx = ++avail_idx;
	barrier();
	wr(R_QUEUE_NOTIFY, 0);
}

/* Waits for the used index to move past what we have seen; returns 1 then, 0 if Status shows
 * DEVICE_NEEDS_RESET first (only when `stop_on_reset`), fails on a timeout. */
static int wait_used(uint16_t head, int stop_on_reset) {
	uint32_t i;
	for (i = 0; i < WAIT_ROUNDS; i++) {
		barrier();
		if (used->idx != used_seen) {
			barrier();	/* the entry after the index */
			if (used->ring[used_seen & (QSIZE - 1)].id != head)
				fail_hex("used ring names another descriptor:", used->ring[used_seen & (QSIZE - 1)].id);
			used_seen++;
			if (rd(R_INTERRUPT_STATUS) & 1)	/* tidy: the interrupt is unused, acknowledge it */
				wr(R_INTERRUPT_ACK, 1);
			return 1;
		}
		if (stop_on_reset && (rd(R_STATUS) & S_NEEDS_RESET))
			return 0;
		outb(0x80, 0);
	}
	fail("timeout waiting for the used ring");
}

static void header(uint32_t type, uint32_t sector) {
	hdr->type = type;
	hdr->reserved = 0;
	hdr->sector = sector;
}

/* One request: header (readable) -> optional data (readable for OUT, writable otherwise) -> status. */
static uint8_t request(uint32_t type, uint32_t sector, uint32_t buf, uint32_t len) {
	header(type, sector);
	*blk_status = 0xff;
	set_desc(0, HDR_ADDR, sizeof(struct blk_hdr), F_NEXT, 1);
	if (len) {
		set_desc(1, buf, len, (uint16_t)(F_NEXT | (type == T_OUT ? 0 : F_WRITE)), 2);
		set_desc(2, STATUS_ADDR, 1, F_WRITE, 0);
	} else {
		set_desc(1, STATUS_ADDR, 1, F_WRITE, 0);
	}
	submit(0);
	wait_used(0, 0);
	barrier();
	return *blk_status;
}

static int printable(uint8_t c) { return c >= 0x20 && c < 0x7f; }

/* Step 2: read sector 0 and check it starts with the test's marker. */
static void read_sector0(int verbose) {
	uint32_t i;
	uint8_t st;
	zero(data, SECTOR);
	if ((st = request(T_IN, 0, DATA_ADDR, SECTOR)) != BLK_S_OK)
		fail_hex("read of sector 0: status", st);
	if (verbose) {
		puts("virtio-blk: sector 0: ");
		for (i = 0; i < 16; i++)
			putc(printable(data[i]) ? (char)data[i] : '.');
		putc('\n');
	}
	for (i = 0; disk_magic[i]; i++)
		if (data[i] != (uint8_t)disk_magic[i])
			fail("sector 0 does not start with JVMM-DISK-TEST");
}

uint32_t kmain(uint32_t magic, const struct mb_info *mbi) {
	uint32_t i, st;
	uint8_t s;
	(void)mbi;
	if (magic != MULTIBOOT_BOOTLOADER_MAGIC)
		fail_hex("bad multiboot magic", magic);

	init(1);
	read_sector0(1);

	/* Step 3: write sector 1, flush, read it back. */
	for (i = 0; i < SECTOR; i++)
		data[i] = (uint8_t)pattern[i & 15];
	if ((s = request(T_OUT, 1, DATA_ADDR, SECTOR)) != BLK_S_OK)
		fail_hex("write of sector 1: status", s);
	if ((s = request(T_FLUSH, 0, 0, 0)) != BLK_S_OK)
		fail_hex("flush: status", s);
	zero(data, SECTOR);
	if ((s = request(T_IN, 1, DATA_ADDR, SECTOR)) != BLK_S_OK)
		fail_hex("read-back of sector 1: status", s);
	for (i = 0; i < SECTOR; i++)
		if (data[i] != (uint8_t)pattern[i & 15])
			fail("sector 1 reads back different from what was written");
	puts("virtio-blk: wrote sector 1 and flushed\n");

	/* Step 4: GET_ID (up to 20 bytes, NUL-padded when shorter). */
	zero(idbuf, ID_BYTES);
	if ((s = request(T_GET_ID, 0, ID_ADDR, ID_BYTES)) != BLK_S_OK)
		fail_hex("GET_ID: status", s);
	puts("virtio-blk: id ");
	for (i = 0; i < ID_BYTES && idbuf[i]; i++)
		putc(printable(idbuf[i]) ? (char)idbuf[i] : '.');
	putc('\n');

	/* Step 5: a descriptor loop (0 -> 1 -> 0) must put the device in DEVICE_NEEDS_RESET. */
	header(T_IN, 0);
	set_desc(0, HDR_ADDR, sizeof(struct blk_hdr), F_NEXT, 1);
	set_desc(1, STATUS_ADDR, 1, F_NEXT | F_WRITE, 0);
	submit(0);
	if (wait_used(0, 1))
		fail("descriptor loop was completed instead of refused");
	st = rd(R_STATUS);
	puts("virtio-blk: loop refused, status ");
	put_hex(st);
	putc('\n');
	reset();
	init(0);
	read_sector0(0);
	puts("virtio-blk: served again after reset\n");

	/* Step 6: a data buffer outside guest RAM: DEVICE_NEEDS_RESET or an IOERR status. */
	header(T_IN, 0);
	*blk_status = 0xff;
	set_desc(0, HDR_ADDR, sizeof(struct blk_hdr), F_NEXT, 1);
	set_desc(1, BAD_ADDR, SECTOR, F_NEXT | F_WRITE, 2);
	set_desc(2, STATUS_ADDR, 1, F_WRITE, 0);
	submit(0);
	if (wait_used(0, 1)) {
		barrier();
		s = *blk_status;
		if (s != BLK_S_IOERR)
			fail_hex("read into a buffer outside RAM completed without IOERR, status", s);
		puts("virtio-blk: out-of-RAM buffer refused: IOERR status\n");
	} else {
		puts("virtio-blk: out-of-RAM buffer refused: DEVICE_NEEDS_RESET, status ");
		put_hex(rd(R_STATUS));
		putc('\n');
	}
	reset();
	init(0);
	read_sector0(0);

	puts("virtio-blk: all ok\n");
	return EXIT_OK;
}
