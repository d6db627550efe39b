/* What a seccomp user-notification round trip costs with no Python in it:
 * the floor under the egress supervisor's connect latency.
 *
 * The child loads a filter that hands connect(2) to a listener (no arch
 * check: a benchmark, not a sandbox) and execs bench/connect_cost (N timed
 * connects to IP:PORT). The parent, in a plain C loop, does what the
 * supervisor does for an allowed address (receive, pidfd_getfd the socket,
 * copy the address with process_vm_readv, check the notification is still
 * pending, look at the socket's family and type and blocking flag, connect
 * it from its copy, answer) — minus the policy decision.
 * connect_cost prints: mean, failures, median (ns).
 * Usage: notify_floor CONNECT_COST IP PORT N [nonblock]
 */
#define _GNU_SOURCE
#include <errno.h>
#include <fcntl.h>
#include <linux/filter.h>
#include <linux/seccomp.h>
#include <stddef.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/ioctl.h>
#include <sys/mman.h>
#include <sys/prctl.h>
#include <sys/socket.h>
#include <sys/syscall.h>
#include <sys/uio.h>
#include <sys/wait.h>
#include <unistd.h>

int main(int argc, char **argv) {
    if (argc < 5 || atoi(argv[4]) <= 0) return 2;
    int n = atoi(argv[4]);
    volatile long *shared = mmap(NULL, 4096, PROT_READ | PROT_WRITE, MAP_SHARED | MAP_ANONYMOUS, -1, 0);
    if (shared == MAP_FAILED) return 2;
    shared[0] = -1;
    shared[1] = 0;
    pid_t pid = fork();
    if (pid == 0) {
        struct sock_filter f[] = {
            BPF_STMT(BPF_LD | BPF_W | BPF_ABS, offsetof(struct seccomp_data, nr)),
            BPF_JUMP(BPF_JMP | BPF_JEQ | BPF_K, SYS_connect, 0, 1),
            BPF_STMT(BPF_RET | BPF_K, SECCOMP_RET_USER_NOTIF),
            BPF_STMT(BPF_RET | BPF_K, SECCOMP_RET_ALLOW),
        };
        struct sock_fprog prog = {sizeof f / sizeof f[0], f};
        prctl(PR_SET_NO_NEW_PRIVS, 1, 0, 0, 0);
        long listener = syscall(SYS_seccomp, SECCOMP_SET_MODE_FILTER, SECCOMP_FILTER_FLAG_NEW_LISTENER, &prog);
        if (listener < 0) _exit(3);
        shared[0] = listener; /* memory, not a system call */
        while (!shared[1])
            ;
        execv(argv[1], argv + 1);
        _exit(127);
    }
    while (shared[0] < 0) {
        if (waitpid(pid, NULL, WNOHANG) == pid) return 2;
    }
    int pidfd = (int)syscall(SYS_pidfd_open, pid, 0);
    int listener = (int)syscall(SYS_pidfd_getfd, pidfd, (int)shared[0], 0);
    close(pidfd);
    if (listener < 0) return 2;
    shared[1] = 1;
    struct seccomp_notif req;
    struct seccomp_notif_resp resp;
    for (int i = 0; i < n;) { /* connect_cost makes exactly n connects */
        memset(&req, 0, sizeof req);
        if (ioctl(listener, SECCOMP_IOCTL_NOTIF_RECV, &req) < 0) {
            if (errno == EINTR || errno == ENOENT) continue;
            break;
        }
        i++;
        memset(&resp, 0, sizeof resp);
        resp.id = req.id;
        int tpidfd = (int)syscall(SYS_pidfd_open, req.pid, 0);
        int fd = tpidfd < 0 ? -1 : (int)syscall(SYS_pidfd_getfd, tpidfd, (int)req.data.args[0], 0);
        if (tpidfd >= 0) close(tpidfd);
        char copy[128];
        size_t size = req.data.args[2] < sizeof copy ? req.data.args[2] : sizeof copy;
        struct iovec local = {copy, size}, remote = {(void *)req.data.args[1], size};
        __u64 id = req.id;
        int domain = 0, type = 0;
        socklen_t len = sizeof domain;
        if (fd < 0 || process_vm_readv(req.pid, &local, 1, &remote, 1, 0) != (ssize_t)size || ioctl(listener, SECCOMP_IOCTL_NOTIF_ID_VALID, &id) < 0) {
            resp.error = -EPERM;
        } else {
            getsockopt(fd, SOL_SOCKET, SO_DOMAIN, &domain, &len);
            getsockopt(fd, SOL_SOCKET, SO_TYPE, &type, &len);
            (void)fcntl(fd, F_GETFL);
            resp.error = connect(fd, (struct sockaddr *)copy, (socklen_t)size) < 0 ? -errno : 0;
        }
        if (fd >= 0) close(fd);
        ioctl(listener, SECCOMP_IOCTL_NOTIF_SEND, &resp);
    }
    int status = 0;
    waitpid(pid, &status, 0);
    return WIFEXITED(status) ? WEXITSTATUS(status) : 1;
}
