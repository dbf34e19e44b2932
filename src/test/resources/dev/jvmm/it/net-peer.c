/* net-peer: the TCP ends of NestedKvmTest's --net user check (busybox's static wget crashes there).
 *   net-peer serve ADDR PORT FILE   listen on ADDR:PORT; for each connection read a request line,
 *                                   send FILE, close (forks into the background once listening;
 *                                   prints "listening")
 *   net-peer get ADDR PORT          connect, send a request line ("GET\n"), copy everything received
 *                                   to stdout until the peer closes (at most 90 s)
 * The client speaks first, as in HTTP: Debian 12's passt completes a forwarded connection's handshake
 * with the guest only when the host's client has sent something (it sends no bare ACK for the guest's
 * SYN-ACK), so a server that speaks first would wait for ever behind a forwarded port.
 * Exit status 0 on success, 1 with a line on stderr otherwise. */
#include <arpa/inet.h>
#include <errno.h>
#include <fcntl.h>
#include <netinet/in.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <unistd.h>

static int fail(const char *what) {
	fprintf(stderr, "net-peer: %s: %s\n", what, strerror(errno));
	return 1;
}

static int address(const char *ip, const char *port, struct sockaddr_in *a) {
	memset(a, 0, sizeof *a);
	a->sin_family = AF_INET;
	a->sin_port = htons((unsigned short)atoi(port));
	return inet_pton(AF_INET, ip, &a->sin_addr) == 1 ? 0 : -1;
}

static int copy(int from, int to) {
	char buf[65536];
	for (;;) {
		ssize_t n = read(from, buf, sizeof buf);
		if (n == 0) return 0;
		if (n < 0) {
			if (errno == EINTR) continue;
			return -1;
		}
		for (ssize_t off = 0; off < n;) {
			ssize_t w = write(to, buf + off, n - off);
			if (w < 0) {
				if (errno == EINTR) continue;
				return -1;
			}
			off += w;
		}
	}
}

int main(int argc, char **argv) {
	struct sockaddr_in a;
	signal(SIGPIPE, SIG_IGN);
	if (argc == 5 && !strcmp(argv[1], "serve")) {
		if (address(argv[2], argv[3], &a)) return fail("bad address");
		int s = socket(AF_INET, SOCK_STREAM, 0), one = 1;
		setsockopt(s, SOL_SOCKET, SO_REUSEADDR, &one, sizeof one);
		if (s < 0 || bind(s, (struct sockaddr *)&a, sizeof a) || listen(s, 8)) return fail("listen");
		printf("listening\n");
		fflush(stdout);
		if (fork() > 0) return 0;
		signal(SIGCHLD, SIG_IGN);
		for (;;) {
			int c = accept(s, NULL, NULL);
			if (c < 0) continue;
			char ch;
			int got = 0;
			while (got < 256 && read(c, &ch, 1) == 1 && ch != '\n') got++; /* the request line */
			int f = open(argv[4], O_RDONLY);
			int r = f >= 0 ? copy(f, c) : -1;
			fprintf(stderr, "net-peer: %s:%s: %s\n", argv[2], argv[3], r ? strerror(errno) : "file sent");
			if (f >= 0) close(f);
			close(c);
		}
	}
	if (argc == 4 && !strcmp(argv[1], "get")) {
		alarm(90); /* a connection that never completes ends the check, not the VM's time */
		if (address(argv[2], argv[3], &a)) return fail("bad address");
		int s = socket(AF_INET, SOCK_STREAM, 0);
		if (s < 0 || connect(s, (struct sockaddr *)&a, sizeof a)) return fail("connect");
		if (write(s, "GET\n", 4) != 4) return fail("send the request");
		return copy(s, 1) ? fail("receive") : 0;
	}
	fprintf(stderr, "usage: net-peer serve ADDR PORT FILE | get ADDR PORT\n");
	return 1;
}
