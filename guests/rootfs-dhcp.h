/*
 * The DHCP client of rootfs-init (rootfs-dhcp.c): gives one interface its IPv4 address, routes and
 * name servers from a DHCP server (RFC 2131, options from RFC 2132 and RFC 3442), as `--net user`
 * (passt) offers them. One lease, no renewal: a test VM lives far shorter than any lease.
 */
#ifndef ROOTFS_DHCP_H
#define ROOTFS_DHCP_H

#include <stddef.h>
#include <stdint.h>

#define DHCP_MAX_ROUTES 8
#define DHCP_MAX_DNS 3

struct dhcp_route {
    uint32_t dest, mask, gateway;   /* network byte order; gateway 0: on the link */
};

struct dhcp_lease {
    uint32_t addr, mask, server;    /* network byte order */
    struct dhcp_route routes[DHCP_MAX_ROUTES];
    size_t nroutes;                 /* option 121 if given, else a default route per option 3 */
    uint32_t dns[DHCP_MAX_DNS];
    size_t ndns;
    unsigned mtu;                   /* 0: none given */
};

/* DHCP message types (option 53) */
enum { DHCP_DISCOVER = 1, DHCP_OFFER = 2, DHCP_REQUEST = 3, DHCP_ACK = 5, DHCP_NAK = 6 };

/*
 * Parses the IPv4 packet pkt[0..len) (IP header first, as an AF_PACKET SOCK_DGRAM socket gives it)
 * as a DHCP reply to transaction xid for hardware address mac. Returns its message type (DHCP_OFFER,
 * DHCP_ACK, DHCP_NAK) and fills *lease, or 0 for anything else: another protocol, port, transaction
 * or client, a truncated or malformed packet. Never reads outside pkt[0..len).
 */
int dhcp_parse_reply(const unsigned char *pkt, size_t len, uint32_t xid, const unsigned char mac[6], struct dhcp_lease *lease);

/*
 * Builds a DISCOVER (requested == 0) or a REQUEST for address requested from server, as a whole
 * IPv4/UDP packet from 0.0.0.0:68 to 255.255.255.255:67 with the broadcast flag set, into out
 * (at least 576 bytes). Returns its length.
 */
size_t dhcp_build_request(unsigned char *out, uint32_t xid, const unsigned char mac[6], uint32_t requested, uint32_t server);

/*
 * Runs the exchange on interface ifname (brought up here) for at most timeout_ms, then configures the
 * lease: address, netmask, MTU, routes. Returns 0, or -1 with a one-line reason in err.
 */
int dhcp_configure(const char *ifname, long timeout_ms, struct dhcp_lease *lease, char *err, size_t errlen);

#endif
