/* The fd-table race against a supervisor that decides by the socket behind
 * a descriptor number and then lets the kernel carry on (CONTINUE): a second
 * thread swaps another socket onto the same number between the check and
 * the kernel's own lookup.
 *
 *   fdswap_probe sendto  IP PORT N   sendto(T, addr=IP:PORT) on a TCP socket
 *                                    while T flips to a UDP socket
 *   fdswap_probe sendmsg IP PORT N   the same through sendmsg's msg_name
 *   fdswap_probe connect IP PORT N   connect(T, IP:PORT) on a unix socket
 *                                    while T flips to a TCP socket
 *
 * Prints "tries=N" then "ok"; the test counts what the peer received.
 */
#include "probe.h"
#include <arpa/inet.h>
#include <errno.h>
#include <netinet/in.h>
#include <pthread.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <unistd.h>

static int tcp, udp, target;
static volatile int stop;

static void *flip(void *unused) {
    (void)unused;
    while (!stop) {
        dup2(udp, target);
        dup2(tcp, target);
    }
    return NULL;
}

int main(int argc, char **argv) {
    if (argc < 5) return 64;
    struct sockaddr_in a;
    memset(&a, 0, sizeof a);
    a.sin_family = AF_INET;
    a.sin_port = htons((unsigned short)atoi(argv[3]));
    inet_pton(AF_INET, argv[2], &a.sin_addr);
    int n = atoi(argv[4]);
    int connecting = !strcmp(argv[1], "connect");
    tcp = socket(AF_INET, SOCK_STREAM, 0);
    udp = connecting ? socket(AF_UNIX, SOCK_STREAM, 0) : socket(AF_INET, SOCK_DGRAM, 0);
    if (tcp < 0 || udp < 0) {
        printf("errno=%s\n", errno_name(errno));
        return 0;
    }
    target = dup(connecting ? udp : tcp);
    pthread_t t;
    pthread_create(&t, NULL, flip, NULL);
    char byte = 'x';
    for (int i = 0; i < n; i++) {
        if (connecting) {
            if (connect(target, (struct sockaddr *)&a, sizeof a) == 0) {
                /* a connected TCP socket cannot connect again: a fresh one */
                close(tcp);
                tcp = socket(AF_INET, SOCK_STREAM, 0);
            }
        } else if (!strcmp(argv[1], "sendto")) {
            sendto(target, &byte, 1, MSG_NOSIGNAL | MSG_DONTWAIT, (struct sockaddr *)&a, sizeof a);
        } else {
            struct iovec iov = {&byte, 1};
            struct msghdr m;
            memset(&m, 0, sizeof m);
            m.msg_name = &a;
            m.msg_namelen = sizeof a;
            m.msg_iov = &iov;
            m.msg_iovlen = 1;
            sendmsg(target, &m, MSG_NOSIGNAL | MSG_DONTWAIT);
        }
    }
    stop = 1;
    pthread_join(t, NULL);
    printf("tries=%d\nok\n", n);
    return 0;
}
