/* Unix sockets under corral run's egress supervisor. One call per run; the
 * last stdout token is "ok" or "errno=NAME".
 *
 *   rights       pass a pipe's write end over a socketpair (SCM_RIGHTS),
 *                write through the received copy, read it back: ok if the
 *                byte arrives
 *   badfd        SCM_RIGHTS naming a descriptor the program does not have
 *   creds        SCM_CREDENTIALS with the program's own pid, uid and gid
 *   connect PATH connect a stream socket to the unix socket at PATH
 */
#include "probe.h"
#include <errno.h>
#include <stdio.h>
#include <string.h>
#include <sys/socket.h>
#include <sys/un.h>
#include <unistd.h>

static int send_control(int s, int level, int type, const void *data, size_t size) {
    char control[CMSG_SPACE(64)] = {0};
    struct iovec v = {"x", 1};
    struct msghdr m = {.msg_iov = &v, .msg_iovlen = 1, .msg_control = control, .msg_controllen = CMSG_SPACE(size)};
    struct cmsghdr *c = CMSG_FIRSTHDR(&m);
    c->cmsg_level = level;
    c->cmsg_type = type;
    c->cmsg_len = CMSG_LEN(size);
    memcpy(CMSG_DATA(c), data, size);
    return (int)sendmsg(s, &m, 0);
}

int main(int argc, char **argv) {
    setvbuf(stdout, NULL, _IONBF, 0);
    if (argc < 2) return 2;
    int sv[2], p[2];
    if (socketpair(AF_UNIX, SOCK_STREAM, 0, sv) < 0 || pipe(p) < 0) return answer(-1);
    if (!strcmp(argv[1], "rights") || !strcmp(argv[1], "badfd")) {
        int fd = !strcmp(argv[1], "rights") ? p[1] : 999;
        if (send_control(sv[0], SOL_SOCKET, SCM_RIGHTS, &fd, sizeof fd) < 0) return answer(-1);
        char byte, control[CMSG_SPACE(sizeof(int))];
        struct iovec v = {&byte, 1};
        struct msghdr m = {.msg_iov = &v, .msg_iovlen = 1, .msg_control = control, .msg_controllen = sizeof control};
        if (recvmsg(sv[1], &m, 0) < 0) return answer(-1);
        struct cmsghdr *c = CMSG_FIRSTHDR(&m);
        if (!c || c->cmsg_type != SCM_RIGHTS) { errno = ENOENT; return answer(-1); }
        int got;
        memcpy(&got, CMSG_DATA(c), sizeof got);
        close(p[1]);
        if (write(got, "y", 1) != 1) return answer(-1);
        close(got);
        char back = 0;
        if (read(p[0], &back, 1) != 1 || back != 'y') { errno = ENOENT; return answer(-1); }
        return answer(0);
    }
    if (!strcmp(argv[1], "creds")) {
        struct ucred cred = {getpid(), getuid(), getgid()};
        return answer(send_control(sv[0], SOL_SOCKET, SCM_CREDENTIALS, &cred, sizeof cred));
    }
    if (!strcmp(argv[1], "connect") && argc >= 3) {
        struct sockaddr_un a = {.sun_family = AF_UNIX};
        snprintf(a.sun_path, sizeof a.sun_path, "%s", argv[2]);
        int s = socket(AF_UNIX, SOCK_STREAM, 0);
        if (s < 0) return answer(-1);
        return answer(connect(s, (struct sockaddr *)&a, sizeof a));
    }
    return 2;
}
