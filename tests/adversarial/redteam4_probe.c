/* redteam4_probe: calls whose answer the egress supervisor writes back.
 *
 *   redteam4_probe mmsg PORT   sendmmsg of two UDP datagrams (3 and 5 bytes)
 *                              to 127.0.0.1:PORT; prints "sent=N len=A,B"
 *                              (msg_len as the call left it; 99 untouched)
 */
#define _GNU_SOURCE
#include <arpa/inet.h>
#include <errno.h>
#include <netinet/in.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <unistd.h>

int main(int argc, char **argv) {
    if (argc < 3 || strcmp(argv[1], "mmsg")) {
        fprintf(stderr, "usage: redteam4_probe mmsg PORT\n");
        return 2;
    }
    int fd = socket(AF_INET, SOCK_DGRAM, 0);
    if (fd < 0) {
        printf("socket errno=%d\n", errno);
        return 1;
    }
    struct sockaddr_in a = {.sin_family = AF_INET, .sin_port = htons((unsigned short)atoi(argv[2]))};
    inet_pton(AF_INET, "127.0.0.1", &a.sin_addr);
    char one[] = "abc", two[] = "defgh";
    struct iovec iov[2] = {{one, 3}, {two, 5}};
    struct mmsghdr m[2];
    memset(m, 0, sizeof m);
    for (int i = 0; i < 2; i++) {
        m[i].msg_hdr.msg_name = &a;
        m[i].msg_hdr.msg_namelen = sizeof a;
        m[i].msg_hdr.msg_iov = &iov[i];
        m[i].msg_hdr.msg_iovlen = 1;
        m[i].msg_len = 99;
    }
    int sent = sendmmsg(fd, m, 2, 0);
    if (sent < 0) {
        printf("sendmmsg errno=%d\n", errno);
        return 1;
    }
    printf("sent=%d len=%u,%u\n", sent, m[0].msg_len, m[1].msg_len);
    return 0;
}
