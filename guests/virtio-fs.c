/* virtio-fs.elf: a polling driver for the virtio-fs device (id 26) at 0xd0000000, served by virtiofsd.
 *
 * Reads the tag and num_request_queues from the configuration space, negotiates VERSION_1 only, sets
 * up the hiprio queue (0) and the request queue (1), and then speaks FUSE on the request queue:
 * INIT, LOOKUP of "hello.txt" in the root, OPEN, READ (printed as "virtio-fs: read: ..."), then CREATE of
 * "guest.txt" and a WRITE into it ("virtio-fs: create and write: N bytes", or "virtio-fs: create: error
 * -N" when the share refuses, e.g. -30 EROFS for a read-only one). The QueueNotify writes are caught by
 * KVM's ioeventfd and reach virtiofsd without an exit to jvmm. No interrupts or exceptions: every wait
 * polls the used ring and writes port 0x80 per round, so it is bounded in time on any host.
 * Exits 0x10 when the read checks passed, 0x11 on the first failure ("virtio-fs: FAIL <what>"). */
#include "mini.h"

#define VIRTIO_ID_FS 26
#define TAG_BYTES 36

/* two split queues of 8 entries: rings of queue q at RING_BASE + q * RING_STRIDE */
#define QSIZE 8
#define GUEST_NAME "virtio-fs"
#include "virtio-mmio.h"
#define NQUEUES 2
#define REQUEST_QUEUE 1
#define RING_BASE 0x200000u
#define RING_STRIDE 0x10000u
#define AVAIL_OFF 0x1000u
#define USED_OFF 0x2000u
#define IN_ADDR 0x220000u	/* the request: FUSE in header + body */
#define OUT_ADDR 0x222000u	/* the reply */
#define IN_BYTES 4096u
#define OUT_BYTES 8192u

/* FUSE (include/uapi/linux/fuse.h): opcodes, and byte offsets, since i386 aligns u64 to 4 */
#define FUSE_LOOKUP 1
#define FUSE_OPEN 14
#define FUSE_READ 15
#define FUSE_WRITE 16
#define FUSE_INIT 26
#define FUSE_CREATE 35
#define FUSE_ROOT_ID 1
#define IN_HEADER 40
#define OUT_HEADER 16
#define ENTRY_OUT 128	/* fuse_entry_out: nodeid, generation, valid times, fuse_attr */
#define O_WRONLY 01
#define O_CREAT 0100

/* Each wait round polls once and writes port 0x80 (a VM exit on any host). */
#define WAIT_ROUNDS 1000000u

static volatile uint8_t *const in = (volatile uint8_t *)IN_ADDR;
static volatile uint8_t *const out = (volatile uint8_t *)OUT_ADDR;
static uint16_t avail_idx[NQUEUES], used_seen[NQUEUES];
static uint32_t unique = 1;

static volatile struct desc *descs(int q) { return (volatile struct desc *)(RING_BASE + q * RING_STRIDE); }
static volatile struct avail *avails(int q) { return (volatile struct avail *)(RING_BASE + q * RING_STRIDE + AVAIL_OFF); }
static volatile struct used *useds(int q) { return (volatile struct used *)(RING_BASE + q * RING_STRIDE + USED_OFF); }

static void put32(volatile uint8_t *p, uint32_t v) { *(volatile uint32_t *)p = v; }
static void put64(volatile uint8_t *p, uint64_t v) { put32(p, (uint32_t)v); put32(p + 4, (uint32_t)(v >> 32)); }
static uint32_t get32(volatile uint8_t *p) { return *(volatile uint32_t *)p; }
static uint64_t get64(volatile uint8_t *p) { return get32(p) | ((uint64_t)get32(p + 4) << 32); }

static void put_dec_signed(int32_t v) {
	if (v < 0) {
		putc('-');
		put_dec((uint32_t)-v);
	} else {
		put_dec((uint32_t)v);
	}
}

/* Identify, read the configuration, reset, VERSION_1 only, both queues, DRIVER_OK. */
static void init(void) {
	uint32_t v, st, hi, max, i, w;
	int q;
	char tag[TAG_BYTES + 1];

	if ((v = rd(R_MAGIC)) != VIRTIO_MAGIC)
		fail_hex("bad magic", v);
	if ((v = rd(R_VERSION)) != 2)
		fail_hex("MMIO version is not 2:", v);
	if ((v = rd(R_DEVICE_ID)) != VIRTIO_ID_FS)
		fail_hex("device id is not 26 (virtio-fs):", v);
	for (i = 0; i < TAG_BYTES; i += 4) {
		w = rd(R_CONFIG + i);
		tag[i] = (char)w;
		tag[i + 1] = (char)(w >> 8);
		tag[i + 2] = (char)(w >> 16);
		tag[i + 3] = (char)(w >> 24);
	}
	tag[TAG_BYTES] = 0;
	for (i = 0; i < TAG_BYTES && tag[i]; i++)
		if (tag[i] < 0x20 || tag[i] > 0x7e)
			tag[i] = '?';
	puts("virtio-fs: tag ");
	puts(tag);
	puts(", request queues ");
	put_dec(rd(R_CONFIG + TAG_BYTES));
	putc('\n');
	if (rd(R_CONFIG + TAG_BYTES) < 1)
		fail_hex("num_request_queues", rd(R_CONFIG + TAG_BYTES));

	wr(R_STATUS, 0);
	if (rd(R_STATUS) != 0)
		fail_hex("reset: Status reads", rd(R_STATUS));
	wr(R_STATUS, S_ACKNOWLEDGE);
	wr(R_STATUS, S_ACKNOWLEDGE | S_DRIVER);
	wr(R_DEVICE_FEATURES_SEL, 1);
	hi = rd(R_DEVICE_FEATURES);
	if (!(hi & 1))
		fail_hex("VIRTIO_F_VERSION_1 not offered, features[63:32]", hi);
	wr(R_DRIVER_FEATURES_SEL, 0);
	wr(R_DRIVER_FEATURES, 0);
	wr(R_DRIVER_FEATURES_SEL, 1);
	wr(R_DRIVER_FEATURES, 1);
	wr(R_STATUS, S_ACKNOWLEDGE | S_DRIVER | S_FEATURES_OK);
	if (!((st = rd(R_STATUS)) & S_FEATURES_OK))
		fail_hex("FEATURES_OK did not stick, status", st);

	for (q = 0; q < NQUEUES; q++) {
		wr(R_QUEUE_SEL, (uint32_t)q);
		max = rd(R_QUEUE_NUM_MAX);
		if (max < QSIZE)
			fail_hex("QueueNumMax below 8:", max);
		avail_idx[q] = used_seen[q] = 0;
		setup_queue((uint32_t)descs(q), (uint32_t)avails(q), (uint32_t)useds(q));
	}
	puts("virtio-fs: queue size max ");
	put_dec(max);
	puts(", using 8\n");
	wr(R_STATUS, S_ACKNOWLEDGE | S_DRIVER | S_FEATURES_OK | S_DRIVER_OK);
	st = rd(R_STATUS);
	if ((st & (S_DRIVER_OK | S_NEEDS_RESET)) != S_DRIVER_OK)
		fail_hex("DRIVER_OK refused, status", st);
	puts("virtio-fs: DRIVER_OK; interrupt status ");
	put_hex(rd(R_INTERRUPT_STATUS));
	putc('\n');
}

/* Starts a FUSE request in `in`: header for `opcode` on `nodeid`, `body` bytes to follow. */
static volatile uint8_t *request(uint32_t opcode, uint64_t nodeid, uint32_t body) {
	zero(in, IN_HEADER + body);
	put32(in, IN_HEADER + body);
	put32(in + 4, opcode);
	put64(in + 8, unique);
	put64(in + 16, nodeid);
	put32(in + 32, 1);	/* pid */
	return in + IN_HEADER;
}

/* Sends the request (readable) and a reply buffer (writable) on the request queue; waits for the
 * reply and returns its error (0 or -errno) after checking the out header. */
static int32_t send(void) {
	const int q = REQUEST_QUEUE;
	volatile struct desc *d = descs(q);
	volatile struct avail *a = avails(q);
	volatile struct used *u = useds(q);
	uint16_t head = (uint16_t)((avail_idx[q] * 2) & (QSIZE - 1));
	uint32_t i, len = get32(in);

	zero(out, OUT_HEADER);
	d[head].addr = IN_ADDR;
	d[head].len = len;
	d[head].flags = F_NEXT;
	d[head].next = (uint16_t)(head + 1);
	d[head + 1].addr = OUT_ADDR;
	d[head + 1].len = OUT_BYTES;
	d[head + 1].flags = F_WRITE;
	d[head + 1].next = 0;
	a->ring[avail_idx[q] & (QSIZE - 1)] = head;
	barrier();
	a->idx = ++avail_idx[q];
	barrier();
	wr(R_QUEUE_NOTIFY, (uint32_t)q);	/* KVM's ioeventfd: straight to virtiofsd */
	for (i = 0; i < WAIT_ROUNDS && u->idx == used_seen[q]; i++)
		outb(0x80, 0);
	if (u->idx == used_seen[q])
		fail_hex("timeout waiting for the reply to opcode", get32(in + 4));
	barrier();
	if (u->ring[used_seen[q] & (QSIZE - 1)].id != head)
		fail_hex("used ring names another descriptor:", u->ring[used_seen[q] & (QSIZE - 1)].id);
	len = u->ring[used_seen[q] & (QSIZE - 1)].len;
	used_seen[q]++;
	if (!(rd(R_INTERRUPT_STATUS) & 1))
		fail_hex("no used-buffer bit in InterruptStatus:", rd(R_INTERRUPT_STATUS));
	wr(R_INTERRUPT_ACK, 1);
	if (len < OUT_HEADER || get32(out) != len)
		fail_hex("reply length", len);
	if (get32(out + 8) != unique)
		fail_hex("reply to another request:", get32(out + 8));
	unique++;
	return (int32_t)get32(out + 4);
}

static uint32_t copy_name(volatile uint8_t *p, const char *name) {
	uint32_t n = 0;
	do
		p[n] = (uint8_t)name[n];
	while (name[n++]);
	return n;
}

uint32_t kmain(uint32_t magic, const struct mb_info *mbi) {
	volatile uint8_t *b;
	int32_t err;
	uint64_t node, fh, size;
	uint32_t n, i;
	static const char hello[] = "hello.txt", created[] = "guest.txt", text[] = "written by the guest\n";
	(void)mbi;
	if (magic != MULTIBOOT_BOOTLOADER_MAGIC)
		fail_hex("bad multiboot magic", magic);
	init();

	b = request(FUSE_INIT, 0, 64);
	put32(b, 7);		/* major */
	put32(b + 4, 31);	/* minor */
	if ((err = send()) != 0)
		fail_hex("FUSE_INIT error", (uint32_t)err);
	puts("virtio-fs: FUSE_INIT: protocol 7.");
	put_dec(get32(out + OUT_HEADER + 4));
	putc('\n');

	b = request(FUSE_LOOKUP, FUSE_ROOT_ID, 0);
	n = copy_name(b, hello);
	put32(in, IN_HEADER + n);
	if ((err = send()) != 0)
		fail_hex("FUSE_LOOKUP hello.txt error", (uint32_t)err);
	node = get64(out + OUT_HEADER);
	size = get64(out + OUT_HEADER + 48);
	puts("virtio-fs: lookup hello.txt: node ");
	put_hex64(node);
	puts(", size ");
	put_dec((uint32_t)size);
	putc('\n');

	b = request(FUSE_OPEN, node, 8);	/* flags 0: O_RDONLY */
	if ((err = send()) != 0)
		fail_hex("FUSE_OPEN error", (uint32_t)err);
	fh = get64(out + OUT_HEADER);

	b = request(FUSE_READ, node, 40);
	put64(b, fh);
	put32(b + 16, 256);	/* size; offset 0 */
	if ((err = send()) != 0)
		fail_hex("FUSE_READ error", (uint32_t)err);
	n = get32(out) - OUT_HEADER;
	if (n != (uint32_t)size)
		fail_hex("FUSE_READ returned a different length:", n);
	puts("virtio-fs: read: ");
	for (i = 0; i < n && out[OUT_HEADER + i] != '\n'; i++)
		putc(out[OUT_HEADER + i] >= 0x20 && out[OUT_HEADER + i] < 0x7f ? (char)out[OUT_HEADER + i] : '.');
	putc('\n');

	b = request(FUSE_CREATE, FUSE_ROOT_ID, 16);
	put32(b, O_WRONLY | O_CREAT);
	put32(b + 4, 0100644);	/* mode; umask 0 */
	n = copy_name(b + 16, created);
	put32(in, IN_HEADER + 16 + n);
	if ((err = send()) != 0) {
		puts("virtio-fs: create: error ");
		put_dec_signed(err);
		putc('\n');
	} else {
		node = get64(out + OUT_HEADER);
		fh = get64(out + OUT_HEADER + ENTRY_OUT);
		b = request(FUSE_WRITE, node, 40 + sizeof(text) - 1);
		put64(b, fh);
		put32(b + 16, sizeof(text) - 1);	/* size; offset 0 */
		for (i = 0; i < sizeof(text) - 1; i++)
			b[40 + i] = (uint8_t)text[i];
		if ((err = send()) != 0)
			fail_hex("FUSE_WRITE error", (uint32_t)err);
		puts("virtio-fs: create and write: ");
		put_dec(get32(out + OUT_HEADER));
		puts(" bytes\n");
	}

	puts("virtio-fs: all ok\n");
	return EXIT_OK;
}
