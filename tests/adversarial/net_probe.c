/* Attacks on the network, other processes and the terminal, one per call:
 *
 *   net_probe socket FAMILY TYPE PROTO        socket(2) with raw numbers
 *   net_probe connect PROTO PORT              socket(AF_INET, SOCK_STREAM, PROTO) + connect 127.0.0.1:PORT
 *   net_probe bind PROTO PORT                 the same, bind instead of connect
 *   net_probe fastopen-sendto PORT            TCP Fast Open: sendto(MSG_FASTOPEN) to 127.0.0.1:PORT
 *   net_probe fastopen-sendmsg PORT           the same through sendmsg
 *   net_probe fastopen-sendmmsg PORT          the same through sendmmsg
 *   net_probe fastopen-connect PORT           setsockopt(TCP_FASTOPEN_CONNECT) then connect + write
 *   net_probe setsockopt LEVEL OPTNAME        setsockopt on a TCP socket; LEVEL/OPTNAME are 64-bit
 *                                             (upper bits reach the filter, the kernel truncates)
 *   net_probe syscall-badfd NAME ARG...       a call on fd -1: EBADF means it passed the filter,
 *                                             EPERM that the filter refused it (NAME: ioctl,
 *                                             setsockopt, sendto, sendmsg, sendmmsg)
 *   net_probe tiocsti TEXT                    push TEXT into the controlling terminal (fd 0)
 *   net_probe tioclinux                       ioctl(0, TIOCLINUX, subcode 6)
 *   net_probe abstract-connect NAME           connect to the abstract unix socket @NAME
 *   net_probe kill|tkill|tgkill|rt_sigqueueinfo|rt_tgsigqueueinfo|pidfd_send_signal PID SIG
 *   net_probe prlimit|setpriority|sched_setaffinity|sched_setscheduler|sched_setparam|ioprio_set PID
 *                                             change another process (PID "self" = own pid)
 *   net_probe process_madvise|pidfd_getfd|kcmp|ptrace-attach|process_vm_readv PID
 *   net_probe int80                           getpid through the i386 ABI (int 0x80)
 *   net_probe x32                             getpid through the x32 ABI (bit 30 set)
 *   net_probe io_uring                        io_uring_setup
 *   net_probe openat2 PATH                    openat2(PATH, O_RDONLY)
 *   net_probe clone3-userns | clone-userns | unshare-userns
 *
 * Prints "ok" or "errno=NAME" (of the first step that failed).
 */
#include "probe.h"
#include <errno.h>
#include <fcntl.h>
#include <linux/ioprio.h>
#include <linux/openat2.h>
#include <linux/sched.h>
#include <netinet/in.h>
#include <netinet/tcp.h>
#include <sched.h>
#include <stddef.h>
#include <sys/mman.h>
#include <signal.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/ioctl.h>
#include <sys/resource.h>
#include <sys/socket.h>
#include <sys/syscall.h>
#include <sys/uio.h>
#include <sys/un.h>
#include <sys/wait.h>
#include <unistd.h>

#ifndef IPPROTO_MPTCP
#define IPPROTO_MPTCP 262
#endif
#ifndef MSG_FASTOPEN
#define MSG_FASTOPEN 0x20000000
#endif
#ifndef TCP_FASTOPEN_CONNECT
#define TCP_FASTOPEN_CONNECT 30
#endif

static long num(const char *s) {
    if (!strcmp(s, "self")) return getpid();
    return (long)strtoull(s, NULL, 0);
}

static struct sockaddr_in loopback(const char *port) {
    struct sockaddr_in a = {0};
    a.sin_family = AF_INET;
    a.sin_port = htons((uint16_t)atoi(port));
    a.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
    return a;
}

static int tcp_socket(int proto) {
    return (int)syscall(SYS_socket, AF_INET, SOCK_STREAM, proto);
}

static int net(int argc, char **argv) {
    const char *what = argv[1];
    if (!strcmp(what, "socket") && argc >= 5)
        return answer(syscall(SYS_socket, num(argv[2]), num(argv[3]), num(argv[4])));
    if ((!strcmp(what, "connect") || !strcmp(what, "bind")) && argc >= 4) {
        int fd = tcp_socket((int)num(argv[2]));
        if (fd < 0) return answer(fd);
        struct sockaddr_in a = loopback(argv[3]);
        if (!strcmp(what, "bind")) return answer(bind(fd, (struct sockaddr *)&a, sizeof a));
        return answer(connect(fd, (struct sockaddr *)&a, sizeof a));
    }
    if (!strncmp(what, "fastopen-", 9) && argc >= 3) {
        int fd = tcp_socket(0);
        if (fd < 0) return answer(fd);
        struct sockaddr_in a = loopback(argv[2]);
        char byte = 'x';
        if (!strcmp(what, "fastopen-sendto"))
            return answer(sendto(fd, &byte, 1, MSG_FASTOPEN, (struct sockaddr *)&a, sizeof a));
        struct iovec iov = {&byte, 1};
        struct msghdr msg = {.msg_name = &a, .msg_namelen = sizeof a, .msg_iov = &iov, .msg_iovlen = 1};
        if (!strcmp(what, "fastopen-sendmsg")) return answer(sendmsg(fd, &msg, MSG_FASTOPEN));
        if (!strcmp(what, "fastopen-sendmmsg")) {
            struct mmsghdr m = {.msg_hdr = msg};
            return answer(sendmmsg(fd, &m, 1, MSG_FASTOPEN));
        }
        if (!strcmp(what, "fastopen-connect")) {
            int one = 1;
            if (setsockopt(fd, IPPROTO_TCP, TCP_FASTOPEN_CONNECT, &one, sizeof one) < 0) return answer(-1);
            if (connect(fd, (struct sockaddr *)&a, sizeof a) < 0) return answer(-1);
            return answer(write(fd, &byte, 1));
        }
    }
    if (!strcmp(what, "setsockopt") && argc >= 4) {
        int fd = tcp_socket(0);
        if (fd < 0) return answer(fd);
        int one = 1;
        return answer(syscall(SYS_setsockopt, fd, num(argv[2]), num(argv[3]), &one, sizeof one));
    }
    if (!strcmp(what, "syscall-badfd") && argc >= 3) {
        const char *name = argv[2];
        long a = argc > 3 ? num(argv[3]) : 0, b = argc > 4 ? num(argv[4]) : 0;
        char byte = 'x';
        if (!strcmp(name, "ioctl")) return answer(syscall(SYS_ioctl, -1, a, &byte));
        if (!strcmp(name, "setsockopt")) {
            int one = 1;
            return answer(syscall(SYS_setsockopt, -1, a, b, &one, sizeof one));
        }
        if (!strcmp(name, "sendto")) return answer(syscall(SYS_sendto, -1, &byte, 1, a, NULL, 0));
        if (!strcmp(name, "sendmsg")) {
            struct iovec iov = {&byte, 1};
            struct msghdr msg = {.msg_iov = &iov, .msg_iovlen = 1};
            return answer(syscall(SYS_sendmsg, -1, &msg, a));
        }
        if (!strcmp(name, "sendmmsg")) {
            struct iovec iov = {&byte, 1};
            struct mmsghdr m = {.msg_hdr = {.msg_iov = &iov, .msg_iovlen = 1}};
            return answer(syscall(SYS_sendmmsg, -1, &m, 1, a));
        }
    }
    if (!strcmp(what, "abstract-connect") && argc >= 3) {
        int fd = (int)syscall(SYS_socket, AF_UNIX, SOCK_STREAM, 0);
        if (fd < 0) return answer(fd);
        struct sockaddr_un a = {.sun_family = AF_UNIX};
        size_t n = strlen(argv[2]);
        if (n > sizeof a.sun_path - 1) n = sizeof a.sun_path - 1;
        memcpy(a.sun_path + 1, argv[2], n);
        return answer(connect(fd, (struct sockaddr *)&a, (socklen_t)(offsetof(struct sockaddr_un, sun_path) + 1 + n)));
    }
    return -1;
}

static int tty(int argc, char **argv) {
    const char *what = argv[1];
    if (!strcmp(what, "tiocsti") && argc >= 3) {
        for (const char *p = argv[2]; *p; p++)
            if (syscall(SYS_ioctl, 0, TIOCSTI, p) < 0) return answer(-1);
        return answer(0);
    }
    if (!strcmp(what, "tioclinux")) {
        char sub = 6; /* TIOCL_GETSHIFTSTATE: harmless if it gets through */
        return answer(syscall(SYS_ioctl, 0, TIOCLINUX, &sub));
    }
    return -1;
}

static int procs(int argc, char **argv) {
    const char *what = argv[1];
    if (argc < 3) return -1;
    long pid = num(argv[2]);
    int sig = argc > 3 ? (int)num(argv[3]) : 0;
    siginfo_t info = {0};
    info.si_code = SI_QUEUE;
    info.si_pid = getpid();
    info.si_uid = getuid();
    if (!strcmp(what, "kill")) return answer(syscall(SYS_kill, pid, sig));
    if (!strcmp(what, "tkill")) return answer(syscall(SYS_tkill, pid, sig));
    if (!strcmp(what, "tgkill")) return answer(syscall(SYS_tgkill, pid, pid, sig));
    if (!strcmp(what, "rt_sigqueueinfo")) {
        info.si_signo = sig;
        return answer(syscall(SYS_rt_sigqueueinfo, pid, sig, &info));
    }
    if (!strcmp(what, "rt_tgsigqueueinfo")) {
        info.si_signo = sig;
        return answer(syscall(SYS_rt_tgsigqueueinfo, pid, pid, sig, &info));
    }
    if (!strcmp(what, "pidfd_send_signal")) {
        long pidfd = syscall(SYS_pidfd_open, pid, 0);
        if (pidfd < 0) return answer(pidfd);
        return answer(syscall(SYS_pidfd_send_signal, pidfd, sig, NULL, 0));
    }
    if (!strcmp(what, "prlimit")) {
        struct rlimit old;
        if (syscall(SYS_prlimit64, pid, RLIMIT_CORE, NULL, &old) < 0) return answer(-1);
        return answer(syscall(SYS_prlimit64, pid, RLIMIT_CORE, &old, NULL));
    }
    if (!strcmp(what, "setpriority")) return answer(syscall(SYS_setpriority, PRIO_PROCESS, pid, 19));
    if (!strcmp(what, "sched_setaffinity")) {
        cpu_set_t set;
        CPU_ZERO(&set);
        CPU_SET(0, &set);
        return answer(syscall(SYS_sched_setaffinity, pid, sizeof set, &set));
    }
    if (!strcmp(what, "sched_setscheduler")) {
        struct sched_param p = {0};
        return answer(syscall(SYS_sched_setscheduler, pid, SCHED_OTHER, &p));
    }
    if (!strcmp(what, "sched_setparam")) {
        struct sched_param p = {0};
        return answer(syscall(SYS_sched_setparam, pid, &p));
    }
    if (!strcmp(what, "ioprio_set"))
        return answer(syscall(SYS_ioprio_set, IOPRIO_WHO_PROCESS, pid, IOPRIO_PRIO_VALUE(IOPRIO_CLASS_BE, 7)));
    if (!strcmp(what, "process_madvise")) {
        long pidfd = syscall(SYS_pidfd_open, pid, 0);
        if (pidfd < 0) return answer(pidfd);
        static char page[4096];
        struct iovec iov = {page, sizeof page};
        return answer(syscall(SYS_process_madvise, pidfd, &iov, 1, MADV_COLD, 0));
    }
    if (!strcmp(what, "pidfd_getfd")) {
        long pidfd = syscall(SYS_pidfd_open, pid, 0);
        if (pidfd < 0) return answer(pidfd);
        return answer(syscall(SYS_pidfd_getfd, pidfd, 0, 0));
    }
    if (!strcmp(what, "kcmp")) return answer(syscall(SYS_kcmp, getpid(), pid, 0 /* KCMP_FILE */, 0, 0));
    if (!strcmp(what, "ptrace-attach")) return answer(syscall(SYS_ptrace, 16 /* PTRACE_ATTACH */, pid, 0, 0));
    if (!strcmp(what, "process_vm_readv")) {
        char buf[8];
        struct iovec local = {buf, sizeof buf}, remote = {(void *)0x400000, sizeof buf};
        return answer(syscall(SYS_process_vm_readv, pid, &local, 1, &remote, 1, 0));
    }
    return -1;
}

static int classics(int argc, char **argv) {
    const char *what = argv[1];
    if (!strcmp(what, "int80")) {
        long ret;
        __asm__ volatile("int $0x80" : "=a"(ret) : "a"(20L) : "memory"); /* i386 getpid */
        if (ret < 0) {
            errno = (int)-ret;
            return answer(-1);
        }
        return answer(0);
    }
    if (!strcmp(what, "x32")) return answer(syscall(0x40000000 | SYS_getpid));
    if (!strcmp(what, "io_uring")) {
        char params[120] = {0};
        return answer(syscall(SYS_io_uring_setup, 1, params));
    }
    if (!strcmp(what, "openat2") && argc >= 3) {
        struct open_how how = {.flags = O_RDONLY};
        return answer(syscall(SYS_openat2, AT_FDCWD, argv[2], &how, sizeof how));
    }
    if (!strcmp(what, "clone3-userns")) {
        struct clone_args args = {.flags = CLONE_NEWUSER, .exit_signal = SIGCHLD};
        long pid = syscall(SYS_clone3, &args, sizeof args);
        if (pid == 0) _exit(0);
        if (pid > 0) waitpid((pid_t)pid, NULL, 0);
        return answer(pid);
    }
    if (!strcmp(what, "clone-userns")) {
        long pid = syscall(SYS_clone, CLONE_NEWUSER | SIGCHLD, 0, 0, 0, 0);
        if (pid == 0) _exit(0);
        if (pid > 0) waitpid((pid_t)pid, NULL, 0);
        return answer(pid);
    }
    if (!strcmp(what, "unshare-userns")) return answer(syscall(SYS_unshare, CLONE_NEWUSER));
    return -1;
}

int main(int argc, char **argv) {
    if (argc < 2) return 64;
    int (*groups[])(int, char **) = {net, tty, procs, classics};
    for (size_t i = 0; i < sizeof groups / sizeof groups[0]; i++) {
        int r = groups[i](argc, argv);
        if (r >= 0) return r;
    }
    fprintf(stderr, "net_probe: unknown attack or missing arguments: %s\n", argv[1]);
    return 64;
}
