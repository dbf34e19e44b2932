/*
 * rootfs-dhcp: the DHCP client rootfs-init runs on each interface its job names (see rootfs-dhcp.h).
 *
 * Both directions go through one AF_PACKET socket bound to the interface: an interface without an
 * address cannot receive a unicast reply on a UDP socket (the kernel drops IP packets for addresses
 * it does not have), and not every server honours the broadcast flag. Requests are whole IPv4/UDP
 * packets to the Ethernet broadcast address; replies are matched by port, transaction id and our
 * hardware address, and every length and option is checked against the packet's end first.
 * DISCOVER and REQUEST are sent again after 0.5, 1, 2, 4 s ... (at most 4 s apart) until the time
 * given runs out; a NAK starts over with a DISCOVER.
 */
#define _GNU_SOURCE
#include "rootfs-dhcp.h"

#include <arpa/inet.h>
#include <errno.h>
#include <linux/if_packet.h>
#include <net/ethernet.h>
#include <net/if.h>
#include <net/route.h>
#include <netinet/in.h>
#include <poll.h>
#include <stdarg.h>
#include <stdio.h>
#include <string.h>
#include <sys/ioctl.h>
#include <sys/random.h>
#include <sys/socket.h>
#include <time.h>
#include <unistd.h>

#define CLIENT_PORT 68
#define SERVER_PORT 67
#define BOOTP_FIXED 236            /* op .. file: the fixed part before the magic cookie */
#define MAGIC 0x63825363u
#define PACKET_MAX 1500

enum {
    OPT_PAD = 0, OPT_SUBNET = 1, OPT_ROUTER = 3, OPT_DNS = 6, OPT_MTU = 26, OPT_REQUESTED = 50,
    OPT_TYPE = 53, OPT_SERVER = 54, OPT_PARAMS = 55, OPT_MAX_SIZE = 57, OPT_CLASSLESS = 121, OPT_END = 255
};

static int failed(char *err, size_t errlen, const char *fmt, ...)
{
    va_list ap;
    va_start(ap, fmt);
    vsnprintf(err, errlen, fmt, ap);
    va_end(ap);
    return -1;
}

static uint16_t checksum(const unsigned char *p, size_t n)
{
    uint32_t sum = 0;
    for (size_t i = 0; i + 1 < n; i += 2) sum += (uint32_t) (p[i] << 8 | p[i + 1]);
    if (n & 1) sum += (uint32_t) p[n - 1] << 8;
    while (sum >> 16) sum = (sum & 0xffff) + (sum >> 16);
    return (uint16_t) ~sum;
}

static void put16(unsigned char *p, unsigned v)
{
    p[0] = (unsigned char) (v >> 8);
    p[1] = (unsigned char) v;
}

static unsigned get16(const unsigned char *p)
{
    return (unsigned) p[0] << 8 | p[1];
}

static uint32_t get32(const unsigned char *p)
{
    return (uint32_t) p[0] << 24 | (uint32_t) p[1] << 16 | (uint32_t) p[2] << 8 | p[3];
}

size_t dhcp_build_request(unsigned char *out, uint32_t xid, const unsigned char mac[6], uint32_t requested, uint32_t server)
{
    memset(out, 0, 576);
    unsigned char *ip = out, *udp = out + 20, *m = out + 28;
    m[0] = 1;                               /* BOOTREQUEST */
    m[1] = 1;                               /* Ethernet */
    m[2] = 6;
    memcpy(m + 4, &(uint32_t) {htonl(xid)}, 4);
    put16(m + 10, 0x8000);                  /* broadcast flag: we cannot receive unicast yet */
    memcpy(m + 28, mac, 6);
    memcpy(m + BOOTP_FIXED, &(uint32_t) {htonl(MAGIC)}, 4);
    unsigned char *o = m + BOOTP_FIXED + 4;
    *o++ = OPT_TYPE, *o++ = 1, *o++ = requested ? DHCP_REQUEST : DHCP_DISCOVER;
    if (requested) {
        *o++ = OPT_REQUESTED, *o++ = 4;
        memcpy(o, &requested, 4), o += 4;
        if (server) {
            *o++ = OPT_SERVER, *o++ = 4;
            memcpy(o, &server, 4), o += 4;
        }
    }
    *o++ = OPT_PARAMS, *o++ = 5, *o++ = OPT_SUBNET, *o++ = OPT_ROUTER, *o++ = OPT_DNS, *o++ = OPT_MTU, *o++ = OPT_CLASSLESS;
    *o++ = OPT_MAX_SIZE, *o++ = 2;
    put16(o, PACKET_MAX), o += 2;
    *o++ = OPT_END;
    size_t len = (size_t) (o - out);
    if (len < 20 + 8 + 300) len = 20 + 8 + 300;   /* BOOTP's minimum message of 300 bytes */
    ip[0] = 0x45;
    put16(ip + 2, (unsigned) len);
    ip[8] = 64;
    ip[9] = IPPROTO_UDP;
    memset(ip + 16, 0xff, 4);               /* to 255.255.255.255, from 0.0.0.0 */
    put16(ip + 10, checksum(ip, 20));
    put16(udp, CLIENT_PORT);
    put16(udp + 2, SERVER_PORT);
    put16(udp + 4, (unsigned) (len - 20));  /* UDP checksum 0: none, as IPv4 allows */
    return len;
}

/* Option 121: (width, the significant octets of the destination, router) entries, RFC 3442. */
static void classless_routes(const unsigned char *v, size_t n, struct dhcp_lease *lease)
{
    size_t i = 0;
    while (i < n && lease->nroutes < DHCP_MAX_ROUTES) {
        unsigned width = v[i++];
        size_t octets = (width + 7) / 8;
        if (width > 32 || i + octets + 4 > n) return;   /* malformed: keep what came before */
        unsigned char dest[4] = {0};
        memcpy(dest, v + i, octets);
        i += octets;
        struct dhcp_route *r = &lease->routes[lease->nroutes++];
        r->mask = width ? htonl(0xffffffffu << (32 - width)) : 0;
        memcpy(&r->dest, dest, 4);
        r->dest &= r->mask;
        memcpy(&r->gateway, v + i, 4);
        i += 4;
    }
}

int dhcp_parse_reply(const unsigned char *pkt, size_t len, uint32_t xid, const unsigned char mac[6], struct dhcp_lease *lease)
{
    memset(lease, 0, sizeof *lease);
    if (len < 20 || pkt[0] >> 4 != 4) return 0;
    size_t ihl = (size_t) (pkt[0] & 15) * 4;
    size_t total = get16(pkt + 2);
    if (ihl < 20 || total < ihl + 8 || total > len || pkt[9] != IPPROTO_UDP) return 0;
    if (get16(pkt + 6) & 0x3fff) return 0;   /* a fragment: DHCP replies fit in one packet */
    const unsigned char *udp = pkt + ihl;
    size_t ulen = get16(udp + 4);
    if (get16(udp) != SERVER_PORT || get16(udp + 2) != CLIENT_PORT || ulen < 8 || ulen > total - ihl) return 0;
    const unsigned char *m = udp + 8;
    size_t mlen = ulen - 8;
    if (mlen < BOOTP_FIXED + 4 || m[0] != 2 || get32(m + 4) != xid || memcmp(m + 28, mac, 6) || get32(m + BOOTP_FIXED) != MAGIC)
        return 0;
    memcpy(&lease->addr, m + 16, 4);         /* yiaddr */
    int type = 0, have_mask = 0;
    uint32_t router = 0;
    const unsigned char *classless = NULL;
    size_t classless_len = 0;
    size_t i = BOOTP_FIXED + 4;
    while (i < mlen) {
        unsigned code = m[i++];
        if (code == OPT_PAD) continue;
        if (code == OPT_END) break;
        if (i >= mlen) return 0;
        size_t n = m[i++];
        if (n > mlen - i) return 0;          /* an option running past the message */
        const unsigned char *v = m + i;
        i += n;
        switch (code) {
            case OPT_TYPE: if (n == 1) type = v[0]; break;
            case OPT_SUBNET: if (n == 4) memcpy(&lease->mask, v, 4), have_mask = 1; break;
            case OPT_ROUTER: if (n >= 4) memcpy(&router, v, 4); break;
            case OPT_SERVER: if (n == 4) memcpy(&lease->server, v, 4); break;
            case OPT_MTU: if (n == 2 && get16(v) >= 68) lease->mtu = get16(v); break;
            case OPT_DNS:
                for (size_t k = 0; k + 4 <= n && lease->ndns < DHCP_MAX_DNS; k += 4) memcpy(&lease->dns[lease->ndns++], v + k, 4);
                break;
            case OPT_CLASSLESS: classless = v, classless_len = n; break;
            default: break;
        }
    }
    if (type != DHCP_OFFER && type != DHCP_ACK && type != DHCP_NAK) return 0;
    if (type == DHCP_NAK) return type;
    uint32_t a = ntohl(lease->addr);
    if (a == 0 || a == 0xffffffffu || (a >> 24) == 127 || (a >> 28) >= 14) return 0;   /* no usable unicast address */
    if (!have_mask) lease->mask = htonl(a >> 24 < 128 ? 0xff000000u : a >> 24 < 192 ? 0xffff0000u : 0xffffff00u);
    if (classless) classless_routes(classless, classless_len, lease);   /* which makes option 3 moot (RFC 3442) */
    else if (router) lease->routes[lease->nroutes++] = (struct dhcp_route) {0, 0, router};
    return type;
}

static long long now_ms(void)
{
    struct timespec t;
    clock_gettime(CLOCK_MONOTONIC, &t);
    return (long long) t.tv_sec * 1000 + t.tv_nsec / 1000000;
}

static int set_addr(int s, const char *ifname, unsigned long request, uint32_t addr)
{
    struct ifreq ifr = {0};
    snprintf(ifr.ifr_name, sizeof ifr.ifr_name, "%s", ifname);
    struct sockaddr_in *sin = (struct sockaddr_in *) &ifr.ifr_addr;
    sin->sin_family = AF_INET;
    sin->sin_addr.s_addr = addr;
    return ioctl(s, request, &ifr);
}

static int add_route(int s, const char *ifname, uint32_t dest, uint32_t mask, uint32_t gateway)
{
    struct rtentry rt = {0};
    struct sockaddr_in *d = (struct sockaddr_in *) &rt.rt_dst, *g = (struct sockaddr_in *) &rt.rt_gateway,
                       *m = (struct sockaddr_in *) &rt.rt_genmask;
    d->sin_family = g->sin_family = m->sin_family = AF_INET;
    d->sin_addr.s_addr = dest;
    m->sin_addr.s_addr = mask;
    g->sin_addr.s_addr = gateway;
    rt.rt_flags = RTF_UP | (gateway ? RTF_GATEWAY : 0) | (mask == 0xffffffffu ? RTF_HOST : 0);
    rt.rt_dev = (char *) ifname;
    return ioctl(s, SIOCADDRT, &rt) && errno != EEXIST ? -1 : 0;
}

static int apply(const char *ifname, const struct dhcp_lease *l, char *err, size_t errlen)
{
    int s = socket(AF_INET, SOCK_DGRAM | SOCK_CLOEXEC, 0);
    if (s < 0) return failed(err, errlen, "socket: %s", strerror(errno));
    int rc = 0;
    char a[INET_ADDRSTRLEN];
    if (set_addr(s, ifname, SIOCSIFADDR, l->addr) || set_addr(s, ifname, SIOCSIFNETMASK, l->mask)) {
        rc = failed(err, errlen, "cannot give %s the address %s: %s", ifname, inet_ntop(AF_INET, &l->addr, a, sizeof a), strerror(errno));
    }
    if (!rc && l->mtu) {
        struct ifreq ifr = {0};
        snprintf(ifr.ifr_name, sizeof ifr.ifr_name, "%s", ifname);
        ifr.ifr_mtu = (int) l->mtu;
        ioctl(s, SIOCSIFMTU, &ifr);           /* a driver may refuse it: the default MTU works too */
    }
    /* routes to routers off the subnet first (passt's option 121 gives one), then the others */
    for (int pass = 0; pass < 2 && !rc; pass++) {
        for (size_t i = 0; i < l->nroutes && !rc; i++) {
            const struct dhcp_route *r = &l->routes[i];
            int onlink = r->gateway == 0;
            if (pass == 0 && !onlink && (r->gateway & l->mask) != (l->addr & l->mask)) {
                if (add_route(s, ifname, r->gateway, 0xffffffffu, 0))
                    rc = failed(err, errlen, "cannot add a route to %s: %s", inet_ntop(AF_INET, &r->gateway, a, sizeof a), strerror(errno));
            }
            if ((pass == 0) == onlink && !rc && add_route(s, ifname, r->dest, r->mask, r->gateway))
                rc = failed(err, errlen, "cannot add the route to %s via %s: %s", inet_ntop(AF_INET, &r->dest, a, sizeof a),
                            ifname, strerror(errno));
        }
    }
    close(s);
    return rc;
}

int dhcp_configure(const char *ifname, long timeout_ms, struct dhcp_lease *lease, char *err, size_t errlen)
{
    unsigned ifindex = if_nametoindex(ifname);
    if (!ifindex) return failed(err, errlen, "no interface %s", ifname);
    int ctl = socket(AF_INET, SOCK_DGRAM | SOCK_CLOEXEC, 0);
    if (ctl < 0) return failed(err, errlen, "socket: %s", strerror(errno));
    struct ifreq ifr = {0};
    snprintf(ifr.ifr_name, sizeof ifr.ifr_name, "%s", ifname);
    unsigned char mac[6];
    int up = ioctl(ctl, SIOCGIFHWADDR, &ifr);
    memcpy(mac, ifr.ifr_hwaddr.sa_data, 6);
    if (!up) up = ioctl(ctl, SIOCGIFFLAGS, &ifr);
    if (!up) {
        ifr.ifr_flags |= IFF_UP;
        up = ioctl(ctl, SIOCSIFFLAGS, &ifr);
    }
    int e = errno;
    close(ctl);
    if (up) return failed(err, errlen, "cannot bring up %s: %s", ifname, strerror(e));

    int s = socket(AF_PACKET, SOCK_DGRAM | SOCK_CLOEXEC, htons(ETH_P_IP));
    if (s < 0) return failed(err, errlen, "packet socket: %s", strerror(errno));
    struct sockaddr_ll at = {.sll_family = AF_PACKET, .sll_protocol = htons(ETH_P_IP), .sll_ifindex = (int) ifindex};
    if (bind(s, (struct sockaddr *) &at, sizeof at)) {
        e = errno;
        close(s);
        return failed(err, errlen, "cannot bind to %s: %s", ifname, strerror(e));
    }
    struct sockaddr_ll to = at;
    to.sll_halen = 6;
    memset(to.sll_addr, 0xff, 6);

    uint32_t xid;
    if (getrandom(&xid, sizeof xid, GRND_NONBLOCK) != sizeof xid) xid = (uint32_t) now_ms() ^ (uint32_t) getpid() << 16;
    unsigned char out[576], in[PACKET_MAX + 64];
    uint32_t requested = 0, server = 0;
    long long deadline = now_ms() + timeout_ms, next_send = 0;
    long gap = 500;
    int rc = -1;
    failed(err, errlen, "no DHCP offer on %s within %ld ms", ifname, timeout_ms);
    while (now_ms() < deadline) {
        if (now_ms() >= next_send) {
            size_t n = dhcp_build_request(out, xid, mac, requested, server);
            if (sendto(s, out, n, 0, (struct sockaddr *) &to, sizeof to) < 0 && errno != ENOBUFS) {
                rc = failed(err, errlen, "cannot send on %s: %s", ifname, strerror(errno));
                break;
            }
            next_send = now_ms() + gap;
            if (gap < 4000) gap *= 2;
        }
        long long wait = (next_send < deadline ? next_send : deadline) - now_ms();
        struct pollfd p = {s, POLLIN, 0};
        if (poll(&p, 1, wait > 0 ? (int) wait : 0) <= 0) continue;
        ssize_t n = recv(s, in, sizeof in, MSG_DONTWAIT);
        if (n <= 0) continue;
        struct dhcp_lease l;
        int type = dhcp_parse_reply(in, (size_t) n, xid, mac, &l);
        if (type == DHCP_OFFER && !requested) {
            requested = l.addr, server = l.server;
            next_send = 0, gap = 500;         /* the REQUEST at once */
            failed(err, errlen, "no DHCP acknowledgement on %s within %ld ms", ifname, timeout_ms);
        } else if (type == DHCP_ACK && requested && l.addr == requested) {
            *lease = l;
            rc = apply(ifname, lease, err, errlen);
            break;
        } else if (type == DHCP_NAK && requested) {
            requested = server = 0;           /* start over */
            next_send = 0, gap = 500;
        }
    }
    close(s);
    return rc;
}
