/* What the bare-metal virtio test guests (virtio-blk.c, virtio-fs.c, virtio-flood.c) share: the
 * virtio-mmio version 2 register layout at jvmm's first device slot, the device status bits, the
 * split-virtqueue structures (virtio 1.2, 2.7), the register accessors, a queue's set-up and the way
 * a check fails.
 * Define QSIZE (the queue size the guest uses) and GUEST_NAME (the prefix of its FAIL lines) before
 * including it. */
#ifndef VIRTIO_MMIO_H
#define VIRTIO_MMIO_H

#include "mini.h"

#if !defined(QSIZE) || !defined(GUEST_NAME)
#error "define QSIZE and GUEST_NAME before including virtio-mmio.h"
#endif

/* virtio-mmio registers (virtio 1.2, 4.2.2) */
#define VIRTIO_BASE 0xd0000000u
#define R_MAGIC 0x000
#define R_VERSION 0x004
#define R_DEVICE_ID 0x008
#define R_DEVICE_FEATURES 0x010
#define R_DEVICE_FEATURES_SEL 0x014
#define R_DRIVER_FEATURES 0x020
#define R_DRIVER_FEATURES_SEL 0x024
#define R_QUEUE_SEL 0x030
#define R_QUEUE_NUM_MAX 0x034
#define R_QUEUE_NUM 0x038
#define R_QUEUE_READY 0x044
#define R_QUEUE_NOTIFY 0x050
#define R_INTERRUPT_STATUS 0x060
#define R_INTERRUPT_ACK 0x064
#define R_STATUS 0x070
#define R_QUEUE_DESC_LOW 0x080
#define R_QUEUE_DESC_HIGH 0x084
#define R_QUEUE_DRIVER_LOW 0x090
#define R_QUEUE_DRIVER_HIGH 0x094
#define R_QUEUE_DEVICE_LOW 0x0a0
#define R_QUEUE_DEVICE_HIGH 0x0a4
#define R_CONFIG_GENERATION 0x0fc
#define R_CONFIG 0x100

#define VIRTIO_MAGIC 0x74726976u

/* device status (virtio 1.2, 2.1) */
#define S_ACKNOWLEDGE 0x01
#define S_DRIVER 0x02
#define S_DRIVER_OK 0x04
#define S_FEATURES_OK 0x08
#define S_NEEDS_RESET 0x40

/* descriptor flags */
#define F_NEXT 1
#define F_WRITE 2

struct desc { uint64_t addr; uint32_t len; uint16_t flags, next; };
struct avail { uint16_t flags, idx, ring[QSIZE], used_event; };
struct used_elem { uint32_t id, len; };
struct used { uint16_t flags, idx; struct used_elem ring[QSIZE]; uint16_t avail_event; };

#define barrier() __asm__ volatile("" ::: "memory")

static inline uint32_t rd(uint32_t reg) { return *(volatile uint32_t *)(VIRTIO_BASE + reg); }
static inline void wr(uint32_t reg, uint32_t v) { *(volatile uint32_t *)(VIRTIO_BASE + reg) = v; }

static inline void zero(volatile uint8_t *p, uint32_t n) {
	while (n--)
		*p++ = 0;
}

/* "GUEST_NAME: FAIL what[ value]" on COM1, then the failure exit status. */
static __attribute__((noreturn, unused)) void fail(const char *what) {
	puts(GUEST_NAME ": FAIL ");
	puts(what);
	putc('\n');
	exit_guest(EXIT_FAIL);
}

static __attribute__((noreturn, unused)) void fail_hex(const char *what, uint32_t v) {
	puts(GUEST_NAME ": FAIL ");
	puts(what);
	putc(' ');
	put_hex(v);
	putc('\n');
	exit_guest(EXIT_FAIL);
}

/* The selected queue: QSIZE entries with its rings (zeroed first) at desc, avail and used, below
 * 4 GiB; then QueueReady, which must read back 1. */
static __attribute__((unused)) void setup_queue(uint32_t desc, uint32_t avail, uint32_t used) {
	zero((volatile uint8_t *)desc, sizeof(struct desc) * QSIZE);
	zero((volatile uint8_t *)avail, sizeof(struct avail));
	zero((volatile uint8_t *)used, sizeof(struct used));
	barrier();
	wr(R_QUEUE_NUM, QSIZE);
	wr(R_QUEUE_DESC_LOW, desc);
	wr(R_QUEUE_DESC_HIGH, 0);
	wr(R_QUEUE_DRIVER_LOW, avail);
	wr(R_QUEUE_DRIVER_HIGH, 0);
	wr(R_QUEUE_DEVICE_LOW, used);
	wr(R_QUEUE_DEVICE_HIGH, 0);
	wr(R_QUEUE_READY, 1);
	if (rd(R_QUEUE_READY) != 1)
		fail_hex("queue not ready, status", rd(R_STATUS));
}

#endif
