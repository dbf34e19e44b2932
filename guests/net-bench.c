/* net-bench: both ends of scripts/bench-net's bulk transfers (static; runs in the guest and in the
 * nested VM alike).
 *   net-bench sink ENDPOINT          listen; for each connection read to end of stream, then close;
 *                                    forks into the background once listening (prints "listening")
 *   net-bench put ENDPOINT MIB       connect, write MIB MiB, shut down the sending side, wait for the
 *                                    peer to close (everything was read), and print
 *                                    "PUT bytes=N secs=S" (CLOCK_MONOTONIC, connect to close)
 * ENDPOINT: tcp:ADDR:PORT (IPv4), vsock:CID:PORT, unix:PATH.
 * Exit status 0 on success, 1 with a line on stderr otherwise. A benchmark helper, not part of jvmm. */
#include <arpa/inet.h>
#include <errno.h>
#include <netinet/in.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <sys/un.h>
#include <time.h>
#include <unistd.h>
#include <linux/vm_sockets.h>

static int fail(const char *what) {
	fprintf(stderr, "net-bench: %s: %s\n", what, strerror(errno));
	return 1;
}

union addr {
	struct sockaddr sa;
	struct sockaddr_in in;
	struct sockaddr_vm vm;
	struct sockaddr_un un;
};

/* Parses ENDPOINT into a; returns its length, or 0 if it is not one. */
static socklen_t endpoint(const char *e, union addr *a) {
	char host[64];
	unsigned long port;
	const char *colon;
	memset(a, 0, sizeof *a);
	if (!strncmp(e, "unix:", 5)) {
		if (strlen(e + 5) >= sizeof a->un.sun_path) return 0;
		a->un.sun_family = AF_UNIX;
		strcpy(a->un.sun_path, e + 5);
		return sizeof a->un;
	}
	int vsock = !strncmp(e, "vsock:", 6);
	if (!vsock && strncmp(e, "tcp:", 4)) return 0;
	e += vsock ? 6 : 4;
	colon = strrchr(e, ':');
	if (!colon || (size_t)(colon - e) >= sizeof host) return 0;
	memcpy(host, e, colon - e);
	host[colon - e] = 0;
	port = strtoul(colon + 1, NULL, 10);
	if (vsock) {
		a->vm.svm_family = AF_VSOCK;
		a->vm.svm_cid = (unsigned)strtoul(host, NULL, 10);
		a->vm.svm_port = (unsigned)port;
		return sizeof a->vm;
	}
	a->in.sin_family = AF_INET;
	a->in.sin_port = htons((unsigned short)port);
	return inet_pton(AF_INET, host, &a->in.sin_addr) == 1 ? sizeof a->in : 0;
}

static double now(void) {
	struct timespec t;
	clock_gettime(CLOCK_MONOTONIC, &t);
	return t.tv_sec + t.tv_nsec / 1e9;
}

int main(int argc, char **argv) {
	union addr a;
	socklen_t len;
	static char buf[1 << 16];
	signal(SIGPIPE, SIG_IGN);
	if (argc == 3 && !strcmp(argv[1], "sink")) {
		if (!(len = endpoint(argv[2], &a))) return fail("bad endpoint");
		int s = socket(a.sa.sa_family, SOCK_STREAM, 0), one = 1;
		if (s < 0) return fail("socket");
		if (a.sa.sa_family == AF_INET) setsockopt(s, SOL_SOCKET, SO_REUSEADDR, &one, sizeof one);
		if (a.sa.sa_family == AF_UNIX) unlink(a.un.sun_path);
		if (bind(s, &a.sa, len) || listen(s, 16)) return fail("listen");
		printf("listening\n");
		fflush(stdout);
		if (fork() > 0) return 0;
		signal(SIGCHLD, SIG_IGN);
		for (;;) {
			int c = accept(s, NULL, NULL);
			if (c < 0) continue;
			if (fork() == 0) {
				while (read(c, buf, sizeof buf) > 0) { }
				_exit(0);
			}
			close(c);
		}
	}
	if (argc == 4 && !strcmp(argv[1], "put")) {
		alarm(300);
		if (!(len = endpoint(argv[2], &a))) return fail("bad endpoint");
		long long total = atoll(argv[3]) << 20, sent = 0;
		memset(buf, 0x5a, sizeof buf);
		int s = socket(a.sa.sa_family, SOCK_STREAM, 0);
		if (s < 0) return fail("socket");
		double t0 = now();
		if (connect(s, &a.sa, len)) return fail("connect");
		while (sent < total) {
			size_t n = total - sent < (long long)sizeof buf ? (size_t)(total - sent) : sizeof buf;
			ssize_t w = write(s, buf, n);
			if (w < 0 && errno == EINTR) continue;
			if (w <= 0) return fail("send");
			sent += w;
		}
		shutdown(s, SHUT_WR);
		while (read(s, buf, sizeof buf) > 0) { } /* the sink closes once it has read everything */
		printf("PUT bytes=%lld secs=%.3f\n", sent, now() - t0);
		return 0;
	}
	fprintf(stderr, "usage: net-bench sink ENDPOINT | put ENDPOINT MIB  (tcp:ADDR:PORT, vsock:CID:PORT, unix:PATH)\n");
	return 1;
}
