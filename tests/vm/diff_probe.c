/* The differential probe: one static binary that performs a list of
 * operations, one per argument, and prints the kernel's answer for each.
 *
 *   diff_probe read:/etc/hostname write:/tmp/x connect-tcp:443 cap-chown:/tmp/f
 *
 * prints one line per operation: "OP\tARG\tok" or "OP\tARG\terrno=NAME".
 * Static (gcc -static): it needs no loader or libc from the policy, so the
 * verdicts measure the policy's file, network and capability rules and
 * nothing else. One process runs the whole list: under TCG a process start
 * is expensive, and the same list runs under `corral run` on the host and
 * under the compiled AppArmor profile in the VM.
 */
#define _GNU_SOURCE
#include <arpa/inet.h>
#include <errno.h>
#include <fcntl.h>
#include <netinet/in.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/mman.h>
#include <sys/socket.h>
#include <sys/stat.h>
#include <sys/syscall.h>
#include <sys/un.h>
#include <sys/wait.h>
#include <unistd.h>

static const char *errname(int e) {
    switch (e) {
    case EACCES: return "EACCES";
    case EPERM: return "EPERM";
    case ENOENT: return "ENOENT";
    case EEXIST: return "EEXIST";
    case EXDEV: return "EXDEV";
    case ENOTDIR: return "ENOTDIR";
    case EISDIR: return "EISDIR";
    case EROFS: return "EROFS";
    case ECONNREFUSED: return "ECONNREFUSED";
    case EADDRINUSE: return "EADDRINUSE";
    case EAFNOSUPPORT: return "EAFNOSUPPORT";
    case EPROTONOSUPPORT: return "EPROTONOSUPPORT";
    case ENOSYS: return "ENOSYS";
    case EINVAL: return "EINVAL";
    case ENOTEMPTY: return "ENOTEMPTY";
    case ENOEXEC: return "ENOEXEC";
    case EADDRNOTAVAIL: return "EADDRNOTAVAIL";
    case ENETUNREACH: return "ENETUNREACH";
    default: {
        static char buf[32];
        snprintf(buf, sizeof buf, "%d", e);
        return buf;
    }
    }
}

/* 0 on success, else errno */
static int rc(long r) { return r < 0 ? errno : 0; }

static int op_read(const char *p) {
    int fd = open(p, O_RDONLY | O_CLOEXEC);
    if (fd < 0) return errno;
    char c;
    int e = read(fd, &c, 1) < 0 ? errno : 0;
    close(fd);
    return e;
}

static int op_write(const char *p) {
    int fd = open(p, O_WRONLY | O_APPEND | O_CLOEXEC);
    if (fd < 0) return errno;
    int e = write(fd, "x", 1) < 0 ? errno : 0;
    close(fd);
    return e;
}

static int op_create(const char *p) {
    int fd = open(p, O_WRONLY | O_CREAT | O_EXCL | O_CLOEXEC, 0644);
    if (fd < 0) return errno;
    close(fd);
    return 0;
}

static int op_list(const char *p) {
    int fd = open(p, O_RDONLY | O_DIRECTORY | O_CLOEXEC);
    if (fd < 0) return errno;
    char buf[4096];
    int e = syscall(SYS_getdents64, fd, buf, sizeof buf) < 0 ? errno : 0;
    close(fd);
    return e;
}

static int op_mmap_exec(const char *p) {
    int fd = open(p, O_RDONLY | O_CLOEXEC);
    if (fd < 0) return errno;
    void *m = mmap(NULL, 4096, PROT_READ | PROT_EXEC, MAP_PRIVATE, fd, 0);
    int e = m == MAP_FAILED ? errno : 0;
    if (m != MAP_FAILED) munmap(m, 4096);
    close(fd);
    return e;
}

/* fork, exec in the child; the child reports execve's errno through a
 * close-on-exec pipe (nothing read: the exec succeeded). */
static int op_exec(const char *p) {
    int fds[2];
    if (pipe2(fds, O_CLOEXEC) < 0) return errno;
    pid_t pid = fork();
    if (pid < 0) { int e = errno; close(fds[0]); close(fds[1]); return e; }
    if (pid == 0) {
        char *argv[] = {(char *)p, "--version", NULL};
        char *envp[] = {NULL};
        int devnull = open("/dev/null", O_WRONLY);
        if (devnull >= 0) { dup2(devnull, 1); dup2(devnull, 2); }
        execve(p, argv, envp);
        int e = errno;
        (void)!write(fds[1], &e, sizeof e);
        _exit(127);
    }
    close(fds[1]);
    int e = 0;
    ssize_t n = read(fds[0], &e, sizeof e);
    close(fds[0]);
    int status;
    waitpid(pid, &status, 0);
    return n == sizeof e ? e : 0;
}

static int inet_op(int connect_not_bind, int type, const char *port) {
    int s = socket(AF_INET, type | SOCK_CLOEXEC, 0);
    if (s < 0) return errno;
    struct sockaddr_in a = {.sin_family = AF_INET, .sin_port = htons(atoi(port))};
    a.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
    int e = rc(connect_not_bind ? connect(s, (struct sockaddr *)&a, sizeof a) : bind(s, (struct sockaddr *)&a, sizeof a));
    close(s);
    return e;
}

static int unix_op(int connect_not_bind, const char *p) {
    int s = socket(AF_UNIX, SOCK_STREAM | SOCK_CLOEXEC, 0);
    if (s < 0) return errno;
    struct sockaddr_un a = {.sun_family = AF_UNIX};
    strncpy(a.sun_path, p, sizeof a.sun_path - 1);
    int e;
    if (connect_not_bind) e = rc(connect(s, (struct sockaddr *)&a, sizeof a));
    else e = rc(bind(s, (struct sockaddr *)&a, sizeof a)) ?: rc(listen(s, 1));
    if (connect_not_bind || e) close(s);  /* a bound listener stays open */
    return e;
}

static int op_socket(const char *spec) {
    int family = 0, type = 0;
    if (!strcmp(spec, "inet-stream")) family = AF_INET, type = SOCK_STREAM;
    else if (!strcmp(spec, "inet-dgram")) family = AF_INET, type = SOCK_DGRAM;
    else if (!strcmp(spec, "inet6-stream")) family = AF_INET6, type = SOCK_STREAM;
    else if (!strcmp(spec, "unix-stream")) family = AF_UNIX, type = SOCK_STREAM;
    else if (!strcmp(spec, "unix-dgram")) family = AF_UNIX, type = SOCK_DGRAM;
    else if (!strcmp(spec, "netlink-raw")) family = AF_NETLINK, type = SOCK_RAW;
    else if (!strcmp(spec, "packet-raw")) family = AF_PACKET, type = SOCK_RAW;
    else return EINVAL;
    int s = socket(family, type | SOCK_CLOEXEC, 0);
    if (s < 0) return errno;
    close(s);
    return 0;
}

/* capability uses: each needs exactly one capability as root */
static int op_cap(const char *cap, const char *arg) {
    if (!strcmp(cap, "chown")) return rc(chown(arg, 1, 1));
    if (!strcmp(cap, "dac_override")) return op_read(arg); /* a mode 000 file owned by another user */
    if (!strcmp(cap, "net_bind_service")) return inet_op(0, SOCK_STREAM, arg);
    if (!strcmp(cap, "net_raw")) { int s = socket(AF_INET, SOCK_RAW | SOCK_CLOEXEC, IPPROTO_ICMP); if (s < 0) return errno; close(s); return 0; }
    if (!strcmp(cap, "sys_chroot")) return rc(chroot(arg));
    if (!strcmp(cap, "sys_admin")) return rc(sethostname("corral-probe", 12));
    if (!strcmp(cap, "fowner")) return rc(chmod(arg, 0600)); /* a file owned by another user */
    return EINVAL;
}

static int run(const char *op, char *arg) {
    char *arg2 = strchr(arg, ',');
    if (arg2) *arg2++ = 0;
    if (!strcmp(op, "read")) return op_read(arg);
    if (!strcmp(op, "write")) return op_write(arg);
    if (!strcmp(op, "create")) return op_create(arg);
    if (!strcmp(op, "unlink")) return rc(unlink(arg));
    if (!strcmp(op, "mkdir")) return rc(mkdir(arg, 0755));
    if (!strcmp(op, "rmdir")) return rc(rmdir(arg));
    if (!strcmp(op, "rename") && arg2) return rc(rename(arg, arg2));
    if (!strcmp(op, "link") && arg2) return rc(link(arg, arg2));
    if (!strcmp(op, "symlink") && arg2) return rc(symlink(arg, arg2));
    if (!strcmp(op, "truncate")) return rc(truncate(arg, 0));
    if (!strcmp(op, "list")) return op_list(arg);
    if (!strcmp(op, "stat")) { struct stat st; return rc(stat(arg, &st)); }
    if (!strcmp(op, "exec")) return op_exec(arg);
    if (!strcmp(op, "mmap-exec")) return op_mmap_exec(arg);
    if (!strcmp(op, "socket")) return op_socket(arg);
    if (!strcmp(op, "connect-tcp")) return inet_op(1, SOCK_STREAM, arg);
    if (!strcmp(op, "bind-tcp")) return inet_op(0, SOCK_STREAM, arg);
    if (!strcmp(op, "connect-udp")) return inet_op(1, SOCK_DGRAM, arg);
    if (!strcmp(op, "bind-unix")) return unix_op(0, arg);
    if (!strcmp(op, "connect-unix")) return unix_op(1, arg);
    if (!strncmp(op, "cap-", 4)) return op_cap(op + 4, arg);
    return EINVAL;
}

int main(int argc, char **argv) {
    signal(SIGPIPE, SIG_IGN);
    for (int i = 1; i < argc; i++) {
        char *spec = argv[i];
        char *arg = strchr(spec, ':');
        if (!arg) { printf("%s\t\tbad-spec\n", spec); continue; }
        *arg++ = 0;
        char shown[4096];
        snprintf(shown, sizeof shown, "%s", arg);
        int e = run(spec, arg);
        if (e) printf("%s\t%s\terrno=%s\n", spec, shown, errname(e));
        else printf("%s\t%s\tok\n", spec, shown);
        fflush(stdout);
    }
    return 0;
}
