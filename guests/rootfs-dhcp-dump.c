/*
 * rootfs-dhcp-dump: runs rootfs-dhcp.c's reply parser on the host, for the Java tests.
 *   rootfs-dhcp-dump reply FILE XID MAC   parses FILE (an IPv4 packet) as a reply to transaction XID
 *                                         (hex) for MAC; prints "type=N" and the lease, or "type=0"
 *   rootfs-dhcp-dump prefixes FILE XID MAC   parses every proper prefix of FILE (each alone in a heap
 *                                         block of its size) and prints how many were taken as replies
 *   rootfs-dhcp-dump request XID MAC [REQUESTED SERVER]   writes a DISCOVER (or REQUEST) to stdout
 */
#include "rootfs-dhcp.h"

#include <arpa/inet.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

static int parse_mac(const char *s, unsigned char mac[6])
{
    return sscanf(s, "%hhx:%hhx:%hhx:%hhx:%hhx:%hhx", &mac[0], &mac[1], &mac[2], &mac[3], &mac[4], &mac[5]) == 6 ? 0 : -1;
}

static const char *ip(uint32_t a)
{
    static char buf[4][INET_ADDRSTRLEN];
    static int n;
    return inet_ntop(AF_INET, &a, buf[n++ & 3], INET_ADDRSTRLEN);
}

int main(int argc, char **argv)
{
    unsigned char mac[6];
    if (argc >= 4 && !strcmp(argv[1], "request") && !parse_mac(argv[3], mac)) {
        uint32_t req = 0, srv = 0;
        if (argc == 6 && (inet_pton(AF_INET, argv[4], &req) != 1 || inet_pton(AF_INET, argv[5], &srv) != 1)) return 2;
        unsigned char out[576];
        size_t n = dhcp_build_request(out, (uint32_t) strtoul(argv[2], NULL, 16), mac, req, srv);
        return fwrite(out, 1, n, stdout) == n ? 0 : 1;
    }
    int prefixes = argc == 5 && !strcmp(argv[1], "prefixes");
    if (argc != 5 || (strcmp(argv[1], "reply") && !prefixes) || parse_mac(argv[4], mac)) {
        fprintf(stderr, "usage: rootfs-dhcp-dump reply|prefixes FILE XID MAC | request XID MAC [REQUESTED SERVER]\n");
        return 2;
    }
    FILE *f = fopen(argv[2], "rb");
    if (!f) return 2;
    static unsigned char pkt[70000];
    size_t len = fread(pkt, 1, sizeof pkt, f);
    fclose(f);
    uint32_t xid = (uint32_t) strtoul(argv[3], NULL, 16);
    struct dhcp_lease l;
    if (prefixes) {
        int taken = 0;
        for (size_t n = 0; n < len; n++) {
            unsigned char *cut = malloc(n ? n : 1);
            memcpy(cut, pkt, n);
            taken += dhcp_parse_reply(cut, n, xid, mac, &l) != 0;
            free(cut);
        }
        printf("taken=%d\n", taken);
        return 0;
    }
    /* the packet alone in a heap block of its exact size */
    unsigned char *exact = malloc(len ? len : 1);
    memcpy(exact, pkt, len);
    int type = dhcp_parse_reply(exact, len, xid, mac, &l);
    printf("type=%d\n", type);
    if (type == DHCP_OFFER || type == DHCP_ACK) {
        printf("addr=%s\nmask=%s\nserver=%s\nmtu=%u\n", ip(l.addr), ip(l.mask), ip(l.server), l.mtu);
        for (size_t i = 0; i < l.nroutes; i++) printf("route=%s/%s via %s\n", ip(l.routes[i].dest), ip(l.routes[i].mask), ip(l.routes[i].gateway));
        for (size_t i = 0; i < l.ndns; i++) printf("dns=%s\n", ip(l.dns[i]));
    }
    free(exact);
    return 0;
}
