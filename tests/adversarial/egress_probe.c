/* Attacks on corral run's egress supervisor: ways to reach a peer the
 * policy does not name. One attack per run; the last stdout token is the
 * kernel's (or supervisor's) answer: "ok" or "errno=NAME".
 *
 *   race IP PORT BADIP BADPORT N  non-blocking connect to IP:PORT while a
 *                                 second thread rewrites the address to
 *                                 BADIP:BADPORT; N tries. Prints ok: the
 *                                 test checks BADIP:BADPORT was never reached.
 *   connect IP PORT               plain TCP connect
 *   mptcp IP PORT                 connect over an MPTCP socket
 *   tfo IP PORT                   sendto(MSG_FASTOPEN): TCP Fast Open
 *   tfo-sendmsg IP PORT           sendmsg(MSG_FASTOPEN)
 *   udp IP PORT                   sendto a UDP datagram
 *   udp-sendmsg IP PORT           sendmsg a UDP datagram with an address
 *   nonblock IP PORT              non-blocking connect: ok if EINPROGRESS or 0
 *   short IP PORT                 connect with an AF_INET6 family in 8 bytes,
 *                                 then a normal connect (the supervisor survives)
 *   stuck IP PORT IP2 PORT2       a second thread's blocking connect to IP:PORT
 *                                 (a listener that never answers) while this
 *                                 one connects to IP2:PORT2: ok if that
 *                                 completes while the other still waits
 *   kill-parent - -               signal the supervisor (our parent)
 *   ptrace-parent - -             attach to the supervisor
 */
#include "probe.h"
#include <arpa/inet.h>
#include <errno.h>
#include <fcntl.h>
#include <netinet/in.h>
#include <netinet/tcp.h>
#include <pthread.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <signal.h>
#include <sys/ptrace.h>
#include <sys/socket.h>
#include <unistd.h>

#ifndef IPPROTO_MPTCP
#define IPPROTO_MPTCP 262
#endif
#ifndef MSG_FASTOPEN
#define MSG_FASTOPEN 0x20000000
#endif

static struct sockaddr_in addr_of(const char *ip, const char *port) {
    struct sockaddr_in a;
    memset(&a, 0, sizeof a);
    a.sin_family = AF_INET;
    a.sin_port = htons((unsigned short)atoi(port));
    inet_pton(AF_INET, ip, &a.sin_addr);
    return a;
}

static volatile struct sockaddr_in shared;
static struct sockaddr_in good, bad;
static volatile int stop;

static void *flip(void *unused) {
    (void)unused;
    while (!stop) {
        shared = bad;
        shared = good;
    }
    return NULL;
}

static struct sockaddr_in stuck_at;
static volatile int stuck_done;

static void *stuck(void *unused) {
    (void)unused;
    int s = socket(AF_INET, SOCK_STREAM, 0);
    connect(s, (struct sockaddr *)&stuck_at, sizeof stuck_at);
    stuck_done = 1;
    return NULL;
}

int main(int argc, char **argv) {
    if (argc < 4) return 2;
    const char *what = argv[1];
    if (!strcmp(what, "kill-parent")) return answer(kill(getppid(), SIGTERM));
    if (!strcmp(what, "ptrace-parent")) return answer((int)ptrace(PTRACE_ATTACH, getppid(), 0, 0));
    struct sockaddr_in a = addr_of(argv[2], argv[3]);
    if (!strcmp(what, "race") && argc >= 7) {
        good = a;
        bad = addr_of(argv[4], argv[5]);
        int n = atoi(argv[6]), reached = 0;
        pthread_t t;
        pthread_create(&t, NULL, flip, NULL);
        for (int i = 0; i < n; i++) {
            int s = socket(AF_INET, SOCK_STREAM | SOCK_NONBLOCK, 0);
            if (connect(s, (struct sockaddr *)&shared, sizeof shared) == 0 || errno == EINPROGRESS) reached++;
            close(s);
        }
        stop = 1;
        pthread_join(t, NULL);
        printf("tries=%d started=%d\nok\n", n, reached);
        return 0;
    }
    if (!strcmp(what, "stuck") && argc >= 6) {
        stuck_at = a;
        struct sockaddr_in other = addr_of(argv[4], argv[5]);
        pthread_t t;
        pthread_create(&t, NULL, stuck, NULL);
        usleep(300000); /* the other connect is waiting by now */
        int s = socket(AF_INET, SOCK_STREAM, 0);
        int r = connect(s, (struct sockaddr *)&other, sizeof other);
        if (r == 0 && stuck_done) printf("late\n");
        else answer(r);
        fflush(stdout);
        _exit(0); /* the other thread may wait minutes more */
    }
    if (!strcmp(what, "connect")) {
        int s = socket(AF_INET, SOCK_STREAM, 0);
        return answer(connect(s, (struct sockaddr *)&a, sizeof a));
    }
    if (!strcmp(what, "short")) {
        int s = socket(AF_INET6, SOCK_STREAM, 0);
        struct sockaddr_in6 six;
        memset(&six, 0, sizeof six);
        six.sin6_family = AF_INET6;
        int r = connect(s, (struct sockaddr *)&six, 8);
        printf("short=%s\n", r < 0 ? errno_name(errno) : "ok");
        int t = socket(AF_INET, SOCK_STREAM | SOCK_NONBLOCK, 0);
        r = connect(t, (struct sockaddr *)&a, sizeof a);
        if (r < 0 && errno == EINPROGRESS) r = 0;
        return answer(r);
    }
    if (!strcmp(what, "nonblock")) {
        int s = socket(AF_INET, SOCK_STREAM | SOCK_NONBLOCK, 0);
        int r = connect(s, (struct sockaddr *)&a, sizeof a);
        if (r < 0 && errno == EINPROGRESS) r = 0;
        return answer(r);
    }
    if (!strcmp(what, "mptcp")) {
        int s = socket(AF_INET, SOCK_STREAM, IPPROTO_MPTCP);
        if (s < 0) return answer(s);
        return answer(connect(s, (struct sockaddr *)&a, sizeof a));
    }
    if (!strcmp(what, "tfo")) {
        int s = socket(AF_INET, SOCK_STREAM, 0);
        return answer((int)sendto(s, "x", 1, MSG_FASTOPEN, (struct sockaddr *)&a, sizeof a));
    }
    if (!strcmp(what, "tfo-sendmsg")) {
        int s = socket(AF_INET, SOCK_STREAM, 0);
        struct iovec v = {"x", 1};
        struct msghdr m = {.msg_name = &a, .msg_namelen = sizeof a, .msg_iov = &v, .msg_iovlen = 1};
        return answer((int)sendmsg(s, &m, MSG_FASTOPEN));
    }
    if (!strcmp(what, "udp")) {
        int s = socket(AF_INET, SOCK_DGRAM, 0);
        return answer((int)sendto(s, "x", 1, 0, (struct sockaddr *)&a, sizeof a));
    }
    if (!strcmp(what, "udp-sendmsg")) {
        int s = socket(AF_INET, SOCK_DGRAM, 0);
        struct iovec v = {"x", 1};
        struct msghdr m = {.msg_name = &a, .msg_namelen = sizeof a, .msg_iov = &v, .msg_iovlen = 1};
        return answer((int)sendmsg(s, &m, 0));
    }
    return 2;
}
