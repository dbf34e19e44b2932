/*
 * Both ends of NestedKvmTest's vsock exchange, built with gcc -static (the guest has no libc of its own).
 * Every connection moves data both ways at once: a child writes SIZE bytes of a stream seeded by
 * SIZE, then shuts its sending side; the parent reads until end of stream. Each side prints
 *   VX sent BYTES HASH ROLE   /   VX got BYTES HASH ROLE
 * (FNV-1a 64 of the bytes), so the test can pair what was sent with what arrived.
 *
 *   g-listen PORT            guest: listen on vsock PORT; connection k answers with 1048576 + 4099 k bytes
 *   g-connect PORT SIZE      guest: connect to the host (CID 2) PORT
 *   g-refused PORT           guest: a connection to CID 2 PORT must fail (nobody listens at PATH_PORT)
 *   h-listen PATH            host: listen on UNIX socket PATH (jvmm connects the guest's connections
 *                            there); connection k answers with 1310720 + 4099 k bytes
 *   h-connect PATH PORT SIZE host: Firecracker's CONNECT PORT on jvmm's socket; no OK line: refused
 *   h-stall PATH PORT        host: connect, then never read (the guest's writes to it stall)
 */
#define _GNU_SOURCE
#include <errno.h>
#include <stdarg.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <sys/un.h>
#include <sys/wait.h>
#include <time.h>
#include <unistd.h>
#include <linux/vm_sockets.h>

static void say(const char *fmt, ...) __attribute__((format(printf, 1, 2)));
static void say(const char *fmt, ...) {
    char buf[256];
    va_list ap;
    va_start(ap, fmt);
    int n = vsnprintf(buf, sizeof buf - 1, fmt, ap);
    va_end(ap);
    if (n < 0) return;
    if (n > (int) sizeof buf - 2) n = sizeof buf - 2;
    buf[n++] = '\n';
    if (write(1, buf, n) < 0) _exit(3);
}

static long now_ms(void) {
    struct timespec t;
    clock_gettime(CLOCK_MONOTONIC, &t);
    return t.tv_sec * 1000L + t.tv_nsec / 1000000L;
}

static void exchange(int fd, long size, const char *role) {
    pid_t w = fork();
    if (w < 0) { perror("fork"); exit(2); }
    if (w == 0) {
        uint64_t h = 1469598103934665603ULL, x = (uint64_t) size * 2654435761ULL + 88172645463325252ULL;
        unsigned char buf[16384];
        long left = size;
        while (left > 0) {
            int n = left < (long) sizeof buf ? (int) left : (int) sizeof buf;
            for (int i = 0; i < n; i++) {
                x ^= x << 13; x ^= x >> 7; x ^= x << 17;
                buf[i] = (unsigned char) x;
                h = (h ^ buf[i]) * 1099511628211ULL;
            }
            for (int off = 0; off < n;) {
                ssize_t k = write(fd, buf + off, n - off);
                if (k < 0) { if (errno == EINTR) continue; say("VX write-failed %s errno=%d", role, errno); _exit(1); }
                off += k;
            }
            left -= n;
        }
        shutdown(fd, SHUT_WR);
        say("VX sent %ld %016llx %s", size, (unsigned long long) h, role);
        _exit(0);
    }
    uint64_t h = 1469598103934665603ULL;
    long total = 0;
    unsigned char buf[16384];
    for (;;) {
        ssize_t n = read(fd, buf, sizeof buf);
        if (n < 0) { if (errno == EINTR) continue; say("VX read-failed %s errno=%d", role, errno); break; }
        if (n == 0) break;
        for (ssize_t i = 0; i < n; i++) h = (h ^ buf[i]) * 1099511628211ULL;
        total += n;
    }
    say("VX got %ld %016llx %s", total, (unsigned long long) h, role);
    waitpid(w, NULL, 0);
    close(fd);
}

static void serve(int ls, long base, const char *role) {
    for (long k = 0;; k++) {
        int c = accept(ls, NULL, NULL);
        if (c < 0) { if (errno == EINTR) { k--; continue; } perror("accept"); exit(2); }
        pid_t p = fork();
        if (p == 0) { close(ls); exchange(c, base + 4099 * k, role); _exit(0); }
        close(c);
        while (waitpid(-1, NULL, WNOHANG) > 0) { }
    }
}

static int vsock_connect(unsigned port, int *err) {
    struct sockaddr_vm a = {.svm_family = AF_VSOCK, .svm_cid = VMADDR_CID_HOST, .svm_port = port};
    for (int tries = 0;; tries++) {
        int s = socket(AF_VSOCK, SOCK_STREAM, 0);
        if (s < 0) { *err = errno; return -1; }
        if (connect(s, (struct sockaddr *) &a, sizeof a) == 0) return s;
        *err = errno;
        close(s);
        /* the transport may still be coming up: only "no such device/route" is worth a retry */
        if ((*err == ENODEV || *err == ENETUNREACH || *err == EHOSTUNREACH || *err == EADDRNOTAVAIL) && tries < 100) {
            usleep(100000);
            continue;
        }
        return -1;
    }
}

static int unix_connect(const char *path) {
    struct sockaddr_un a = {.sun_family = AF_UNIX};
    if (strlen(path) >= sizeof a.sun_path) { fprintf(stderr, "path too long\n"); exit(2); }
    strcpy(a.sun_path, path);
    int s = socket(AF_UNIX, SOCK_STREAM, 0);
    if (s < 0 || connect(s, (struct sockaddr *) &a, sizeof a) != 0) { perror("connect"); exit(2); }
    return s;
}

/* CONNECT PORT, then the answer line: 1 for OK, 0 for a connection closed without one. */
static int handshake(int s, const char *port) {
    char line[64];
    int n = snprintf(line, sizeof line, "CONNECT %s\n", port);
    if (write(s, line, n) != n) return 0;
    int len = 0;
    while (len < (int) sizeof line - 1) {
        ssize_t k = read(s, line + len, 1);
        if (k <= 0) return 0;
        if (line[len++] == '\n') break;
    }
    line[len] = 0;
    return strncmp(line, "OK ", 3) == 0;
}

int main(int argc, char **argv) {
    if (argc < 3) { fprintf(stderr, "usage: see the source\n"); return 2; }
    const char *mode = argv[1];
    if (!strcmp(mode, "g-listen")) {
        int s = socket(AF_VSOCK, SOCK_STREAM, 0);
        struct sockaddr_vm a = {.svm_family = AF_VSOCK, .svm_cid = VMADDR_CID_ANY, .svm_port = (unsigned) atoi(argv[2])};
        if (s < 0 || bind(s, (struct sockaddr *) &a, sizeof a) != 0 || listen(s, 16) != 0) { say("VX g-listen failed errno=%d", errno); return 1; }
        say("VX g-listen ready");
        serve(s, 1048576, "g-listen");
    } else if (!strcmp(mode, "g-connect") && argc == 4) {
        int err;
        int s = vsock_connect((unsigned) atoi(argv[2]), &err);
        if (s < 0) { say("VX g-connect failed errno=%d", err); return 1; }
        exchange(s, atol(argv[3]), "g-connect");
    } else if (!strcmp(mode, "g-refused")) {
        int err;
        long t0 = now_ms();
        int s = vsock_connect((unsigned) atoi(argv[2]), &err);
        if (s >= 0) { say("VX guest connected where nobody listens"); return 1; }
        say("VX guest refused errno=%d ms=%ld", err, now_ms() - t0);
    } else if (!strcmp(mode, "h-listen")) {
        struct sockaddr_un a = {.sun_family = AF_UNIX};
        strncpy(a.sun_path, argv[2], sizeof a.sun_path - 1);
        unlink(argv[2]);
        int s = socket(AF_UNIX, SOCK_STREAM, 0);
        if (s < 0 || bind(s, (struct sockaddr *) &a, sizeof a) != 0 || listen(s, 16) != 0) { perror("h-listen"); return 2; }
        serve(s, 1310720, "h-listen");
    } else if (!strcmp(mode, "h-connect") && argc == 5) {
        long t0 = now_ms();
        int s = unix_connect(argv[2]);
        if (!handshake(s, argv[3])) { say("VX host refused port=%s ms=%ld", argv[3], now_ms() - t0); return 0; }
        exchange(s, atol(argv[4]), "h-connect");
    } else if (!strcmp(mode, "h-stall") && argc == 4) {
        int s = unix_connect(argv[2]);
        if (!handshake(s, argv[3])) { say("VX stall refused"); return 1; }
        say("VX stalled ok");
        for (;;) pause();
    } else {
        fprintf(stderr, "unknown mode %s\n", mode);
        return 2;
    }
    return 0;
}
