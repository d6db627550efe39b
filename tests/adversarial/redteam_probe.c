/* Red-team attacks on corral run's egress supervisor: ways to make the
 * supervisor do, on the program's behalf, what the kernel would refuse the
 * program itself. One attack per run; the last stdout token is the answer:
 * "ok" or "errno=NAME".
 *
 *   mark IP PORT       UDP sendmsg to IP:PORT with an SO_MARK control
 *                      message (the kernel wants CAP_NET_ADMIN or
 *                      CAP_NET_RAW of the sender)
 *   priority IP PORT   the same with SO_PRIORITY 7 (CAP_NET_ADMIN above 6)
 *   hopopts IP6 PORT   UDP/IPv6 sendmsg with an IPV6_HOPOPTS control
 *                      message (CAP_NET_RAW)
 *   lsrr IP PORT       UDP sendmsg with an IP_RETOPTS control message: a
 *                      loose source route whose first hop is 127.0.0.3,
 *                      where the datagram is sent instead (CAP_NET_RAW)
 *   ttl IP PORT        UDP sendmsg with IP_TTL: allowed to anyone
 *   unspec IP PORT     UDP sendto IP:PORT with the address's family
 *                      AF_UNSPEC (IPv4 UDP sends to it as if AF_INET)
 *   unspec-msg IP PORT the same with sendmsg
 *   connect IP PORT    TCP connect; IP may be IPv4 or IPv6
 *   uring IP PORT      TCP connect to IP:PORT as an io_uring CONNECT
 *                      request (the kernel makes it: no connect(2) to
 *                      notify, no seccomp filter to see it)
 *   replant DIR NAME FILE  move DIR aside (rename to DIR.old), make
 *                      DIR/NAME's directories anew and copy FILE to
 *                      DIR/NAME: replace a directory tree that holds a
 *                      denied one, without touching the denied one
 *   hello IP PORT SNI1 SNI2  TCP connect, send a ClientHello whose
 *                      server_name lists SNI1 then SNI2; ok if the peer
 *                      answered anything
 */
#include "probe.h"
#include <arpa/inet.h>
#include <errno.h>
#include <fcntl.h>
#include <linux/io_uring.h>
#include <netinet/in.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/mman.h>
#include <sys/socket.h>
#include <sys/stat.h>
#include <sys/syscall.h>
#include <unistd.h>

static int send_cmsg(int family, const char *ip, int port, int level, int type, const void *value, size_t size) {
    struct sockaddr_storage ss = {0};
    socklen_t len;
    if (family == AF_INET6) {
        struct sockaddr_in6 *a = (struct sockaddr_in6 *)&ss;
        a->sin6_family = AF_INET6;
        a->sin6_port = htons(port);
        inet_pton(AF_INET6, ip, &a->sin6_addr);
        len = sizeof *a;
    } else {
        struct sockaddr_in *a = (struct sockaddr_in *)&ss;
        a->sin_family = AF_INET;
        a->sin_port = htons(port);
        inet_pton(AF_INET, ip, &a->sin_addr);
        len = sizeof *a;
    }
    int s = socket(family, SOCK_DGRAM, 0);
    if (s < 0) return answer(s);
    char control[CMSG_SPACE(64)] = {0};
    struct iovec v = {"x", 1};
    struct msghdr m = {.msg_name = &ss, .msg_namelen = len, .msg_iov = &v, .msg_iovlen = 1, .msg_control = control, .msg_controllen = CMSG_SPACE(size)};
    struct cmsghdr *c = CMSG_FIRSTHDR(&m);
    c->cmsg_level = level;
    c->cmsg_type = type;
    c->cmsg_len = CMSG_LEN(size);
    memcpy(CMSG_DATA(c), value, size);
    return answer((int)sendmsg(s, &m, 0));
}

static size_t put16(uint8_t *p, unsigned v) { p[0] = v >> 8; p[1] = v & 255; return 2; }

static int hello(const char *ip, int port, const char *sni1, const char *sni2) {
    uint8_t names[600], ext[700], body[1024], rec[1200];
    size_t n = 2, e = 0, b = 0;
    const char *list[2] = {sni1, sni2};
    for (int i = 0; i < 2; i++) {
        size_t l = strlen(list[i]);
        names[n++] = 0;
        n += put16(names + n, l);
        memcpy(names + n, list[i], l);
        n += l;
    }
    put16(names, n - 2);
    e += put16(ext + e, 0);
    e += put16(ext + e, n);
    memcpy(ext + e, names, n);
    e += n;
    body[b++] = 3; body[b++] = 3;                 /* legacy_version TLS 1.2 */
    memset(body + b, 7, 32); b += 32;             /* random */
    body[b++] = 0;                                /* session id */
    b += put16(body + b, 2); b += put16(body + b, 0xC02F); /* one suite */
    body[b++] = 1; body[b++] = 0;                 /* null compression */
    b += put16(body + b, e);
    memcpy(body + b, ext, e); b += e;
    size_t r = 0;
    rec[r++] = 22; rec[r++] = 3; rec[r++] = 1;
    r += put16(rec + r, b + 4);
    rec[r++] = 1; rec[r++] = 0; r += put16(rec + r, b);
    memcpy(rec + r, body, b); r += b;
    struct sockaddr_in a = {.sin_family = AF_INET, .sin_port = htons(port)};
    inet_pton(AF_INET, ip, &a.sin_addr);
    int s = socket(AF_INET, SOCK_STREAM, 0);
    if (connect(s, (struct sockaddr *)&a, sizeof a) < 0) return answer(-1);
    if (write(s, rec, r) != (ssize_t)r) return answer(-1);
    char buf[16];
    ssize_t got = read(s, buf, sizeof buf);
    if (got == 0) { errno = ECONNRESET; return answer(-1); }
    return answer((int)got);
}

static int uring_connect(const char *ip, int port) {
    struct io_uring_params p = {0};
    int ring = (int)syscall(SYS_io_uring_setup, 4, &p);
    if (ring < 0) return answer(ring);
    size_t sq_size = p.sq_off.array + p.sq_entries * sizeof(unsigned);
    size_t cq_size = p.cq_off.cqes + p.cq_entries * sizeof(struct io_uring_cqe);
    char *sq = mmap(NULL, sq_size, PROT_READ | PROT_WRITE, MAP_SHARED | MAP_POPULATE, ring, IORING_OFF_SQ_RING);
    char *cq = mmap(NULL, cq_size, PROT_READ | PROT_WRITE, MAP_SHARED | MAP_POPULATE, ring, IORING_OFF_CQ_RING);
    struct io_uring_sqe *sqes = mmap(NULL, p.sq_entries * sizeof *sqes, PROT_READ | PROT_WRITE, MAP_SHARED | MAP_POPULATE, ring, IORING_OFF_SQES);
    if (sq == MAP_FAILED || cq == MAP_FAILED || sqes == MAP_FAILED) return answer(-1);
    static struct sockaddr_in a;
    a.sin_family = AF_INET;
    a.sin_port = htons(port);
    inet_pton(AF_INET, ip, &a.sin_addr);
    int s = socket(AF_INET, SOCK_STREAM, 0);
    if (s < 0) return answer(s);
    unsigned tail = *(unsigned *)(sq + p.sq_off.tail), mask = *(unsigned *)(sq + p.sq_off.ring_mask);
    struct io_uring_sqe *e = &sqes[tail & mask];
    memset(e, 0, sizeof *e);
    e->opcode = IORING_OP_CONNECT;
    e->fd = s;
    e->addr = (unsigned long)&a;
    e->off = sizeof a;
    ((unsigned *)(sq + p.sq_off.array))[tail & mask] = tail & mask;
    __atomic_store_n((unsigned *)(sq + p.sq_off.tail), tail + 1, __ATOMIC_RELEASE);
    if (syscall(SYS_io_uring_enter, ring, 1, 1, IORING_ENTER_GETEVENTS, NULL, 0) < 0) return answer(-1);
    unsigned head = *(unsigned *)(cq + p.cq_off.head);
    struct io_uring_cqe *c = (struct io_uring_cqe *)(cq + p.cq_off.cqes) + (head & *(unsigned *)(cq + p.cq_off.ring_mask));
    if (c->res < 0) errno = -c->res;
    return answer(c->res);
}

static int tcp_connect(const char *ip, int port) {
    struct sockaddr_storage ss = {0};
    socklen_t len;
    int family = strchr(ip, ':') ? AF_INET6 : AF_INET;
    if (family == AF_INET6) {
        struct sockaddr_in6 *a = (struct sockaddr_in6 *)&ss;
        a->sin6_family = AF_INET6;
        a->sin6_port = htons(port);
        inet_pton(AF_INET6, ip, &a->sin6_addr);
        len = sizeof *a;
    } else {
        struct sockaddr_in *a = (struct sockaddr_in *)&ss;
        a->sin_family = AF_INET;
        a->sin_port = htons(port);
        inet_pton(AF_INET, ip, &a->sin_addr);
        len = sizeof *a;
    }
    int s = socket(family, SOCK_STREAM, 0);
    if (s < 0) return answer(s);
    return answer(connect(s, (struct sockaddr *)&ss, len));
}

static int replant(const char *dir, const char *name, const char *file) {
    char old[4096], path[4096];
    snprintf(old, sizeof old, "%s.old", dir);
    if (rename(dir, old) < 0) return answer(-1);
    snprintf(path, sizeof path, "%s/%s", dir, name);
    for (char *p = path + strlen(dir); *p; p++) {
        if (*p != '/') continue;
        *p = 0;
        if (mkdir(path, 0700) < 0 && errno != EEXIST) return answer(-1);
        *p = '/';
    }
    int in = open(file, O_RDONLY), out = open(path, O_WRONLY | O_CREAT | O_TRUNC, 0600);
    if (in < 0 || out < 0) return answer(-1);
    char buf[65536];
    ssize_t n;
    while ((n = read(in, buf, sizeof buf)) > 0)
        if (write(out, buf, n) != n) return answer(-1);
    return answer(close(out));
}

static int unspec(const char *ip, int port, int msg) {
    struct sockaddr_in a = {.sin_family = AF_UNSPEC, .sin_port = htons(port)};
    inet_pton(AF_INET, ip, &a.sin_addr);
    int s = socket(AF_INET, SOCK_DGRAM, 0);
    if (s < 0) return answer(s);
    if (!msg) return answer((int)sendto(s, "x", 1, 0, (struct sockaddr *)&a, sizeof a));
    struct iovec v = {"x", 1};
    struct msghdr m = {.msg_name = &a, .msg_namelen = sizeof a, .msg_iov = &v, .msg_iovlen = 1};
    return answer((int)sendmsg(s, &m, 0));
}

int main(int argc, char **argv) {
    setvbuf(stdout, NULL, _IONBF, 0);
    if (argc < 4) return 2;
    const char *what = argv[1], *ip = argv[2];
    int port = atoi(argv[3]);
    if (!strcmp(what, "mark")) { int v = 0x1234; return send_cmsg(AF_INET, ip, port, SOL_SOCKET, SO_MARK, &v, sizeof v); }
    if (!strcmp(what, "priority")) { int v = 7; return send_cmsg(AF_INET, ip, port, SOL_SOCKET, SO_PRIORITY, &v, sizeof v); }
    if (!strcmp(what, "lsrr")) {
        unsigned char opt[8] = {1, 0x83, 7, 4}; /* NOP, LSRR of one hop */
        inet_pton(AF_INET, "127.0.0.3", opt + 4);
        return send_cmsg(AF_INET, ip, port, IPPROTO_IP, IP_RETOPTS, opt, sizeof opt);
    }
    if (!strcmp(what, "ttl")) { int v = 9; return send_cmsg(AF_INET, ip, port, IPPROTO_IP, IP_TTL, &v, sizeof v); }
    if (!strcmp(what, "hopopts")) {
        uint8_t opt[8] = {0, 0, 1, 4, 0, 0, 0, 0}; /* next header, length 0, PadN of 4 */
        return send_cmsg(AF_INET6, ip, port, IPPROTO_IPV6, IPV6_HOPOPTS, opt, sizeof opt);
    }
    if (!strcmp(what, "unspec")) return unspec(ip, port, 0);
    if (!strcmp(what, "unspec-msg")) return unspec(ip, port, 1);
    if (!strcmp(what, "connect")) return tcp_connect(ip, port);
    if (!strcmp(what, "uring")) return uring_connect(ip, port);
    if (!strcmp(what, "replant") && argc >= 5) return replant(argv[2], argv[3], argv[4]);
    if (!strcmp(what, "hello") && argc >= 6) return hello(ip, port, argv[4], argv[5]);
    return 2;
}
