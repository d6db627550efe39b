/* Red-team attacks (third round): a confined program acting on what lies
 * outside its sandbox. One attack per run; the answer ("ok" or
 * "errno=NAME") is the last token the attack writes.
 *
 *   pidreuse FD   print "pid=P", fork a child and exit. The child (still
 *                 confined: it inherits the filter that names P as "its own
 *                 pid") waits until P is gone, asks whether the filter lets
 *                 prlimit64 act on P at all (an invalid resource: the
 *                 kernel answers ESRCH or EINVAL, the filter EPERM),
 *                 and if it does waits for another process
 *                 to take P and writes its RLIMIT_NOFILE back unchanged
 *                 (harmless to whoever holds P, but a write the kernel
 *                 allows only on a process of the same user). The answer
 *                 goes to FD, inherited from the test, since stdout closes
 *                 with P.
 *   sigio PID SIG  make PID the owner of a pipe's read end (F_SETOWN), with
 *                 SIG as its I/O signal (F_SETSIG) and O_ASYNC, then write
 *                 to the pipe: the kernel, not the program, sends SIG to
 *                 PID. "ok" when every call succeeded; the test looks at
 *                 PID.
 *   plant PATH FILE  make PATH's missing directories and copy FILE to PATH
 *   rawudp FAMILY PROTO HDRINCL IP PORT  a raw socket of FAMILY (4 or 6)
 *                 and PROTO sends one UDP datagram "leak" to IP:PORT;
 *                 HDRINCL 1: sets IP_HDRINCL/IPV6_HDRINCL and writes the
 *                 IP header itself; 2: writes it without asking (PROTO
 *                 255, IPPROTO_RAW, implies it)
 *   spoof SRC IP PORT  a UDP socket with IP_TRANSPARENT sends "spoof" to
 *                 IP:PORT from SRC, another host's address (IP_PKTINFO)
 *   getxattr PATH NAME  print the value of PATH's extended attribute NAME
 *                 ("value=..."), then "ok", or the error
 *   inotify DIR   watch DIR (inotify), print "watching", then print the name
 *                 in the first event that names an entry and "ok", or the
 *                 error; gives up after 10 s ("timeout")
 */
#include "probe.h"
#include <errno.h>
#include <fcntl.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/inotify.h>
#include <sys/resource.h>
#include <sys/xattr.h>
#include <sys/socket.h>
#include <arpa/inet.h>
#include <netinet/in.h>
#include <netinet/ip.h>
#include <netinet/ip6.h>
#include <poll.h>
#include <sys/stat.h>
#include <sys/syscall.h>
#include <time.h>
#include <unistd.h>

static void say(int fd, int ret)
{
    if (ret >= 0) {
        dprintf(fd, "ok\n");
    } else {
        dprintf(fd, "errno=%s\n", errno_name(errno));
    }
}

static void nap(void)
{
    struct timespec ts = {0, 2000000};
    nanosleep(&ts, NULL);
}

static long prlimit_raw(pid_t pid, unsigned resource, const struct rlimit *new, struct rlimit *old)
{
    return syscall(SYS_prlimit64, pid, resource, new, old);
}

static int pidreuse(int fd)
{
    pid_t self = getpid();
    printf("pid=%d\n", (int)self);
    fflush(stdout);
    pid_t child = fork();
    if (child < 0) {
        say(fd, -1);
        return 0;
    }
    if (child > 0)
        return 0; /* P exits: its pid is free for anyone */
    close(0);
    close(1);
    close(2);
    while (getppid() == self)
        nap();
    if (prlimit_raw(self, 999, NULL, NULL) < 0 && errno == EPERM) {
        say(fd, -1); /* the filter refuses P: held */
        return 0;
    }
    for (int i = 0; i < 15000; i++) { /* 30 s for another process to take P */
        struct rlimit old;
        if (prlimit_raw(self, RLIMIT_NOFILE, NULL, &old) == 0) {
            say(fd, (int)prlimit_raw(self, RLIMIT_NOFILE, &old, NULL));
            return 0;
        }
        nap();
    }
    dprintf(fd, "timeout\n");
    return 0;
}

static int sigio(pid_t pid, int sig)
{
    int p[2];
    if (pipe(p) < 0 || fcntl(p[0], F_SETOWN, pid) < 0 || fcntl(p[0], F_SETSIG, sig) < 0 || fcntl(p[0], F_SETFL, O_ASYNC | O_NONBLOCK) < 0) {
        say(1, -1);
        return 0;
    }
    int ret = (int)write(p[1], "x", 1);
    struct timespec ts = {0, 200000000};
    nanosleep(&ts, NULL);
    say(1, ret);
    return 0;
}

static int plant(const char *path, const char *file)
{
    char dir[4096];
    snprintf(dir, sizeof dir, "%s", path);
    for (char *p = dir + 1; *p; p++) {
        if (*p != '/')
            continue;
        *p = 0;
        if (mkdir(dir, 0755) < 0 && errno != EEXIST) {
            say(1, -1);
            return 0;
        }
        *p = '/';
    }
    int in = open(file, O_RDONLY), out = open(path, O_WRONLY | O_CREAT | O_TRUNC, 0644);
    if (in < 0 || out < 0) {
        say(1, -1);
        return 0;
    }
    char buf[65536];
    ssize_t n;
    while ((n = read(in, buf, sizeof buf)) > 0)
        if (write(out, buf, n) != n) {
            say(1, -1);
            return 0;
        }
    say(1, close(out));
    return 0;
}

static int watch(const char *dir)
{
    int fd = inotify_init1(IN_CLOEXEC);
    if (fd < 0 || inotify_add_watch(fd, dir, IN_CREATE | IN_OPEN | IN_ACCESS | IN_MODIFY) < 0) {
        say(1, -1);
        return 0;
    }
    printf("watching\n");
    fflush(stdout);
    struct pollfd p = {fd, POLLIN, 0};
    char buf[4096] __attribute__((aligned(__alignof__(struct inotify_event))));
    while (poll(&p, 1, 10000) > 0) {
        ssize_t n = read(fd, buf, sizeof buf);
        for (char *at = buf; n > 0 && at < buf + n;) {
            struct inotify_event *e = (struct inotify_event *)at;
            if (e->len) {
                printf("name=%s\n", e->name);
                fflush(stdout);
                say(1, 0);
                return 0;
            }
            at += sizeof *e + e->len;
        }
    }
    printf("timeout\n");
    return 0;
}

static int rawudp(int family, int proto, int hdrincl, const char *ip, int port)
{
    int six = family == 6;
    int s = socket(six ? AF_INET6 : AF_INET, SOCK_RAW, proto);
    if (s < 0) {
        say(1, -1);
        return 0;
    }
    int one = 1;
    if (hdrincl == 1 && setsockopt(s, six ? IPPROTO_IPV6 : IPPROTO_IP, six ? 36 /* IPV6_HDRINCL */ : IP_HDRINCL, &one, sizeof one) < 0) {
        say(1, -1);
        return 0;
    }
    struct sockaddr_storage ss = {0};
    socklen_t len;
    unsigned char pkt[80] = {0};
    size_t off = 0;
    if (six) {
        struct sockaddr_in6 *a = (struct sockaddr_in6 *)&ss;
        a->sin6_family = AF_INET6;
        inet_pton(AF_INET6, ip, &a->sin6_addr);
        len = sizeof *a;
        if (hdrincl) {
            struct ip6_hdr *h = (struct ip6_hdr *)pkt;
            h->ip6_flow = htonl(6u << 28);
            h->ip6_plen = htons(12);
            h->ip6_nxt = IPPROTO_UDP;
            h->ip6_hlim = 64;
            h->ip6_src = in6addr_loopback;
            h->ip6_dst = a->sin6_addr;
            off = sizeof *h;
        }
    } else {
        struct sockaddr_in *a = (struct sockaddr_in *)&ss;
        a->sin_family = AF_INET;
        inet_pton(AF_INET, ip, &a->sin_addr);
        len = sizeof *a;
        if (hdrincl) {
            struct iphdr *h = (struct iphdr *)pkt;
            h->ihl = 5;
            h->version = 4;
            h->ttl = 64;
            h->protocol = IPPROTO_UDP;
            h->tot_len = htons(20 + 12);
            h->saddr = htonl(INADDR_LOOPBACK);
            h->daddr = a->sin_addr.s_addr;
            off = 20;
        }
    }
    unsigned short *udp = (unsigned short *)(pkt + off);
    udp[0] = htons(40000);
    udp[1] = htons(port);
    udp[2] = htons(12);
    memcpy(pkt + off + 8, "leak", 4);
    say(1, (int)sendto(s, pkt, off + 12, 0, (struct sockaddr *)&ss, len));
    return 0;
}

static int readxattr(const char *path, const char *name)
{
    char value[256] = {0};
    ssize_t n = getxattr(path, name, value, sizeof value - 1);
    if (n >= 0) {
        printf("value=%s\n", value);
        fflush(stdout);
    }
    say(1, (int)n);
    return 0;
}

static int spoof(const char *src, const char *ip, int port)
{
    int s = socket(AF_INET, SOCK_DGRAM, 0), one = 1;
    if (s < 0 || setsockopt(s, IPPROTO_IP, IP_TRANSPARENT, &one, sizeof one) < 0) {
        say(1, -1);
        return 0;
    }
    struct sockaddr_in a = {.sin_family = AF_INET, .sin_port = htons(port)};
    inet_pton(AF_INET, ip, &a.sin_addr);
    char control[CMSG_SPACE(sizeof(struct in_pktinfo))] = {0};
    struct iovec v = {"spoof", 5};
    struct msghdr m = {.msg_name = &a, .msg_namelen = sizeof a, .msg_iov = &v, .msg_iovlen = 1, .msg_control = control, .msg_controllen = sizeof control};
    struct cmsghdr *c = CMSG_FIRSTHDR(&m);
    c->cmsg_level = IPPROTO_IP;
    c->cmsg_type = IP_PKTINFO;
    c->cmsg_len = CMSG_LEN(sizeof(struct in_pktinfo));
    inet_pton(AF_INET, src, &((struct in_pktinfo *)CMSG_DATA(c))->ipi_spec_dst);
    say(1, (int)sendmsg(s, &m, 0));
    return 0;
}

int main(int argc, char **argv)
{
    if (argc >= 5 && !strcmp(argv[1], "spoof"))
        return spoof(argv[2], argv[3], atoi(argv[4]));
    if (argc >= 4 && !strcmp(argv[1], "getxattr"))
        return readxattr(argv[2], argv[3]);
    if (argc >= 7 && !strcmp(argv[1], "rawudp"))
        return rawudp(atoi(argv[2]), atoi(argv[3]), atoi(argv[4]), argv[5], atoi(argv[6]));
    if (argc >= 3 && !strcmp(argv[1], "inotify"))
        return watch(argv[2]);
    if (argc >= 4 && !strcmp(argv[1], "plant"))
        return plant(argv[2], argv[3]);
    if (argc >= 4 && !strcmp(argv[1], "sigio"))
        return sigio(atoi(argv[2]), atoi(argv[3]));
    if (argc >= 3 && !strcmp(argv[1], "pidreuse"))
        return pidreuse(atoi(argv[2]));
    fprintf(stderr, "usage: redteam3_probe pidreuse FD | sigio PID SIG | plant PATH FILE | spoof SRC IP PORT | getxattr PATH NAME | inotify DIR | rawudp FAMILY PROTO HDRINCL IP PORT\n");
    return 3;
}
