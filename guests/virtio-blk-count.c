/* virtio-blk-count.elf: reads sectors of the virtio-mmio block device at 0xd0000000 in a loop,
 * printing one line per read, slowly enough for a test to pause and snapshot it mid-run.
 *
 * Negotiates VERSION_1 and EVENT_IDX, sets up queue 0, then for round 1..ROUNDS reads sector
 * (round * 7) % capacity, checks that it starts with its own number (u32, little-endian) and
 * "JVMM-SECTOR", and prints "round N sector S value V". Between reads it writes port 0x80 DELAY
 * times. Ends with "virtio-blk-count: done, sum X" (X: the sum of the values read). Polls only: no
 * interrupts (an InterruptStatus bit the device sets is acknowledged). Exits 0x10 when every read
 * was right, 0x11 on the first failure ("virtio-blk-count: FAIL <what>").
 *
 * With the command line "unnotified", round UNNOTIFIED_ROUND's request is made available without a
 * queue notification ("virtio-blk-count: round N not notified, waiting") and waited for about
 * WAIT_LONG rounds: a device serves it only if something else makes it look at its queue (as a
 * restored jvmm does, signalling every queue once, for a notification the pause left unserved). */
#include "mini.h"

#define VIRTIO_ID_BLOCK 2
#define T_IN 0
#define BLK_S_OK 0
#define F_EVENT_IDX 29

#define QSIZE 8
#define GUEST_NAME "virtio-blk-count"
#include "virtio-mmio.h"
#define DESC_ADDR 0x200000u
#define AVAIL_ADDR 0x201000u
#define USED_ADDR 0x202000u
#define HDR_ADDR 0x203000u
#define STATUS_ADDR 0x203100u
#define DATA_ADDR 0x204000u
#define SECTOR 512

#define ROUNDS 150u
#define DELAY 1500u
#define WAIT_ROUNDS 1000000u
#define UNNOTIFIED_ROUND 5u
#define WAIT_LONG 100000000u

struct blk_hdr { uint32_t type, reserved; uint64_t sector; };

static volatile struct desc *const desc = (volatile struct desc *)DESC_ADDR;
static volatile struct avail *const avail = (volatile struct avail *)AVAIL_ADDR;
static volatile struct used *const used = (volatile struct used *)USED_ADDR;
static volatile struct blk_hdr *const hdr = (volatile struct blk_hdr *)HDR_ADDR;
static volatile uint8_t *const blk_status = (volatile uint8_t *)STATUS_ADDR;
static volatile uint8_t *const data = (volatile uint8_t *)DATA_ADDR;

static const char magic[] = "JVMM-SECTOR";

/* Reset, VERSION_1 + EVENT_IDX, queue 0 of QSIZE entries, DRIVER_OK; returns the capacity (low word). */
static uint32_t init(void) {
	uint32_t st, cap;
	if (rd(R_MAGIC) != VIRTIO_MAGIC || rd(R_VERSION) != 2 || rd(R_DEVICE_ID) != VIRTIO_ID_BLOCK)
		fail("no virtio-blk device at 0xd0000000");
	wr(R_STATUS, 0);
	wr(R_STATUS, S_ACKNOWLEDGE);
	wr(R_STATUS, S_ACKNOWLEDGE | S_DRIVER);
	wr(R_DEVICE_FEATURES_SEL, 0);
	if (!(rd(R_DEVICE_FEATURES) & (1u << F_EVENT_IDX)))
		fail("EVENT_IDX not offered");
	wr(R_DRIVER_FEATURES_SEL, 0);
	wr(R_DRIVER_FEATURES, 1u << F_EVENT_IDX);
	wr(R_DRIVER_FEATURES_SEL, 1);
	wr(R_DRIVER_FEATURES, 1);	/* VERSION_1 */
	wr(R_STATUS, S_ACKNOWLEDGE | S_DRIVER | S_FEATURES_OK);
	if (!(rd(R_STATUS) & S_FEATURES_OK))
		fail("FEATURES_OK refused");
	wr(R_QUEUE_SEL, 0);
	setup_queue(DESC_ADDR, AVAIL_ADDR, USED_ADDR);
	wr(R_STATUS, S_ACKNOWLEDGE | S_DRIVER | S_FEATURES_OK | S_DRIVER_OK);
	st = rd(R_STATUS);
	if ((st & (S_DRIVER_OK | S_NEEDS_RESET)) != S_DRIVER_OK)
		fail_hex("DRIVER_OK refused, status", st);
	cap = rd(R_CONFIG);
	if (rd(R_CONFIG + 4) != 0 || cap == 0)
		fail_hex("capacity not between 1 sector and 2 TiB:", cap);
	return cap;
}

static uint16_t avail_idx, used_seen;

/* Whether the command line's first word is "unnotified" (jvmm appends virtio_mmio.device=... words). */
static int unnotified(const struct mb_info *mbi) {
	const char *a, *b = "unnotified";
	if (!(mbi->flags & MB_INFO_CMDLINE))
		return 0;
	for (a = (const char *)mbi->cmdline; *b && *a == *b; a++, b++)
		;
	return !*b && (*a == 0 || *a == ' ');
}

/* Reads `sector` into DATA_ADDR through a three-descriptor chain, notifying the queue unless
 * `quiet`, waiting at most `rounds`; returns the status byte. */
static uint8_t read_sector(uint32_t sector, int quiet, uint32_t rounds) {
	uint32_t i;
	hdr->type = T_IN;
	hdr->reserved = 0;
	hdr->sector = sector;
	*blk_status = 0xff;
	desc[0] = (struct desc){HDR_ADDR, sizeof(struct blk_hdr), F_NEXT, 1};
	desc[1] = (struct desc){DATA_ADDR, SECTOR, F_NEXT | F_WRITE, 2};
	desc[2] = (struct desc){STATUS_ADDR, 1, F_WRITE, 0};
	avail->used_event = used_seen;	/* EVENT_IDX: an interrupt for the next completion (acknowledged, unused) */
	avail->ring[avail_idx & (QSIZE - 1)] = 0;
	barrier();
	avail->idx = ++avail_idx;
	barrier();
	if (!quiet)
		wr(R_QUEUE_NOTIFY, 0);
	for (i = 0; i < rounds; i++) {
		barrier();
		if (used->idx != used_seen)
			break;
		if (rd(R_STATUS) & S_NEEDS_RESET)
			fail("DEVICE_NEEDS_RESET");
		outb(0x80, 0);
	}
	if (i == rounds)
		fail("timeout waiting for the used ring");
	barrier();
	if (used->ring[used_seen & (QSIZE - 1)].id != 0)
		fail_hex("used ring names another descriptor:", used->ring[used_seen & (QSIZE - 1)].id);
	used_seen++;
	if (rd(R_INTERRUPT_STATUS) & 1)
		wr(R_INTERRUPT_ACK, 1);
	return *blk_status;
}

uint32_t kmain(uint32_t mb_magic, const struct mb_info *mbi) {
	uint32_t cap, round, sector, value, sum = 0, i;
	uint8_t s;
	int quiet_round;
	if (mb_magic != MULTIBOOT_BOOTLOADER_MAGIC)
		fail_hex("bad multiboot magic", mb_magic);
	cap = init();
	puts("virtio-blk-count: capacity ");
	put_dec(cap);
	puts(" sectors\n");
	for (round = 1; round <= ROUNDS; round++) {
		sector = (round * 7) % cap;
		zero(data, 16);
		quiet_round = round == UNNOTIFIED_ROUND && unnotified(mbi);
		if (quiet_round)
			puts("virtio-blk-count: round 5 not notified, waiting\n");
		if ((s = read_sector(sector, quiet_round, quiet_round ? WAIT_LONG : WAIT_ROUNDS)) != BLK_S_OK)
			fail_hex("read: status", s);
		value = data[0] | (uint32_t)data[1] << 8 | (uint32_t)data[2] << 16 | (uint32_t)data[3] << 24;
		if (value != sector)
			fail_hex("sector holds another number:", value);
		for (i = 0; magic[i]; i++)
			if (data[4 + i] != (uint8_t)magic[i])
				fail("sector does not hold JVMM-SECTOR");
		value = data[16] | (uint32_t)data[17] << 8 | (uint32_t)data[18] << 16 | (uint32_t)data[19] << 24;
		sum += value;
		puts("round ");
		put_dec(round);
		puts(" sector ");
		put_dec(sector);
		puts(" value ");
		put_hex(value);
		putc('\n');
		for (i = 0; i < DELAY; i++)
			outb(0x80, 0);
	}
	puts("virtio-blk-count: done, sum ");
	put_hex(sum);
	putc('\n');
	return EXIT_OK;
}
