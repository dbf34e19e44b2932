/*
 * Disk benchmark run by a Linux guest (scripts/bench-disk), the same binary under jvmm and under QEMU.
 * Times itself with CLOCK_MONOTONIC, so what it reports is the guest's own view of the device.
 *
 *   disk-bench seq DEV BLOCK_KIB
 *       reads DEV from start to end with read(2) of BLOCK_KIB KiB through the guest's page cache
 *       (readahead, as dd does); prints "SEQ <bytes> <seconds>"
 *   disk-bench rand DEV DEPTH SECONDS
 *       4 KiB reads at random 4 KiB-aligned offsets, O_DIRECT (no page cache), DEPTH of them in flight
 *       at all times through Linux AIO (io_submit/io_getevents, called as raw system calls: no libaio),
 *       for SECONDS; checks every read returned 4096 bytes; prints "RAND <reads> <seconds>"
 * Exit status 0, or 1 with a line on stderr.
 */
#define _GNU_SOURCE
#include <errno.h>
#include <fcntl.h>
#include <linux/aio_abi.h>
#include <linux/fs.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/ioctl.h>
#include <sys/syscall.h>
#include <time.h>
#include <unistd.h>

#define PAGE 4096
#define MAX_DEPTH 256

static double now(void) {
    struct timespec t;
    clock_gettime(CLOCK_MONOTONIC, &t);
    return t.tv_sec + t.tv_nsec / 1e9;
}

static int fail(const char *what) {
    fprintf(stderr, "disk-bench: %s: %s\n", what, strerror(errno));
    return 1;
}

static uint64_t device_size(int fd) {
    uint64_t size = 0;
    if (ioctl(fd, BLKGETSIZE64, &size) == 0) return size;
    off_t end = lseek(fd, 0, SEEK_END);
    return end > 0 ? (uint64_t) end : 0;
}

static int seq(const char *dev, long kib) {
    if (kib < 1 || kib > 65536) { fprintf(stderr, "disk-bench: block size %ld KiB out of range\n", kib); return 1; }
    int fd = open(dev, O_RDONLY);
    if (fd < 0) return fail(dev);
    size_t block = (size_t) kib * 1024;
    char *buf = malloc(block);
    if (!buf) return fail("malloc");
    uint64_t total = 0;
    double t0 = now();
    for (;;) {
        ssize_t n = read(fd, buf, block);
        if (n < 0) return fail("read");
        if (n == 0) break;
        total += (uint64_t) n;
    }
    double t1 = now();
    printf("SEQ %llu %.6f\n", (unsigned long long) total, t1 - t0);
    return 0;
}

static uint64_t rng = 0x9e3779b97f4a7c15ull;
static uint64_t next_random(void) {
    rng ^= rng << 13; rng ^= rng >> 7; rng ^= rng << 17;
    return rng;
}

static int rand_reads(const char *dev, long depth, long seconds) {
    if (depth < 1 || depth > MAX_DEPTH) { fprintf(stderr, "disk-bench: depth %ld out of range 1-%d\n", depth, MAX_DEPTH); return 1; }
    if (seconds < 1 || seconds > 3600) { fprintf(stderr, "disk-bench: %ld seconds out of range\n", seconds); return 1; }
    int fd = open(dev, O_RDONLY | O_DIRECT);
    if (fd < 0) return fail(dev);
    uint64_t pages = device_size(fd) / PAGE;
    if (pages == 0) { fprintf(stderr, "disk-bench: %s is smaller than 4 KiB\n", dev); return 1; }
    aio_context_t ctx = 0;
    if (syscall(SYS_io_setup, depth, &ctx) < 0) return fail("io_setup");
    static struct iocb cbs[MAX_DEPTH];
    static struct iocb *ptrs[MAX_DEPTH];
    static struct io_event events[MAX_DEPTH];
    char *bufs;
    if (posix_memalign((void **) &bufs, PAGE, (size_t) depth * PAGE)) return fail("posix_memalign");
    for (long i = 0; i < depth; i++) {
        memset(&cbs[i], 0, sizeof cbs[i]);
        cbs[i].aio_fildes = fd;
        cbs[i].aio_lio_opcode = IOCB_CMD_PREAD;
        cbs[i].aio_buf = (uint64_t) (uintptr_t) (bufs + i * PAGE);
        cbs[i].aio_nbytes = PAGE;
        cbs[i].aio_data = (uint64_t) i;
    }
    uint64_t done = 0;
    double t0 = now(), end = t0 + seconds;
    for (long i = 0; i < depth; i++) {
        cbs[i].aio_offset = (int64_t) ((next_random() % pages) * PAGE);
        ptrs[i] = &cbs[i];
    }
    if (syscall(SYS_io_submit, ctx, depth, ptrs) != depth) return fail("io_submit");
    long inflight = depth;
    while (inflight > 0) {
        long n = syscall(SYS_io_getevents, ctx, 1, depth, events, NULL);
        if (n < 0) {
            if (errno == EINTR) continue;
            return fail("io_getevents");
        }
        int more = now() < end;
        long resubmit = 0;
        for (long k = 0; k < n; k++) {
            if (events[k].res != PAGE) {
                fprintf(stderr, "disk-bench: a read returned %lld, not %d\n", (long long) events[k].res, PAGE);
                return 1;
            }
            done++;
            inflight--;
            if (more) {
                struct iocb *cb = &cbs[events[k].data];
                cb->aio_offset = (int64_t) ((next_random() % pages) * PAGE);
                ptrs[resubmit++] = cb;
            }
        }
        if (resubmit > 0) {
            if (syscall(SYS_io_submit, ctx, resubmit, ptrs) != resubmit) return fail("io_submit");
            inflight += resubmit;
        }
    }
    double t1 = now();
    printf("RAND %llu %.6f\n", (unsigned long long) done, t1 - t0);
    return 0;
}

int main(int argc, char **argv) {
    if (argc == 4 && strcmp(argv[1], "seq") == 0) return seq(argv[2], atol(argv[3]));
    if (argc == 5 && strcmp(argv[1], "rand") == 0) return rand_reads(argv[2], atol(argv[3]), atol(argv[4]));
    fprintf(stderr, "usage: disk-bench seq DEV BLOCK_KIB | disk-bench rand DEV DEPTH SECONDS\n");
    return 2;
}
