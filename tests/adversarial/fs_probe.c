/* fs_probe: one filesystem or unix-socket attack per invocation, for
 * tests/adversarial/test_fs_escapes.py.
 *
 *   fs_probe OP ARG...
 *
 * Prints "ok" when the kernel let the attack through, otherwise
 * "errno=NAME" (errno=EACCES, errno=EPERM, ...), and exits 0 either way: the test asserts the
 * kernel's answer, not the probe's exit status. Exit 3 means bad usage.
 *
 * Built static (gcc -static) so that it needs no library grant.
 */
#include "probe.h"
#include <errno.h>
#include <fcntl.h>
#include <stddef.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/ioctl.h>
#include <sys/mman.h>
#include <sys/socket.h>
#include <sys/stat.h>
#include <sys/un.h>
#include <sys/wait.h>
#include <time.h>
#include <unistd.h>

/* read PATH: open and read one byte */
static int op_read(const char *path)
{
    int fd = open(path, O_RDONLY);
    if (fd < 0)
        return answer(-1);
    char c;
    return answer(read(fd, &c, 1) < 0 ? -1 : 0);
}

/* write PATH: overwrite an existing file (no create) */
static int op_write(const char *path)
{
    int fd = open(path, O_WRONLY);
    if (fd < 0)
        return answer(-1);
    return answer(write(fd, "pwned\n", 6) == 6 ? 0 : -1);
}

/* copy SRC DST: replace DST's content with SRC's (O_TRUNC, creating DST) */
static int op_copy(const char *src, const char *dst)
{
    static char buf[1 << 20];
    int in = open(src, O_RDONLY);
    if (in < 0) {
        fprintf(stderr, "fs_probe: cannot read %s: %s\n", src, strerror(errno));
        return 3;
    }
    ssize_t n = read(in, buf, sizeof buf);
    if (n < 0)
        return 3;
    int out = open(dst, O_WRONLY | O_CREAT | O_TRUNC, 0600);
    if (out < 0)
        return answer(-1);
    return answer(write(out, buf, n) == n ? 0 : -1);
}

/* truncopen PATH: open read-only with O_TRUNC (Landlock sees a read below ABI 3) */
static int op_truncopen(const char *path) { return answer(open(path, O_RDONLY | O_TRUNC)); }

/* ioctl PATH REQUEST: open read-only, then ask the device's driver REQUEST */
static int op_ioctl(const char *path, const char *request)
{
    char buf[256];
    int fd = open(path, O_RDONLY | O_NOCTTY);
    if (fd < 0)
        return answer(-1);
    return answer(ioctl(fd, strtoul(request, NULL, 0), buf));
}

static int op_create(const char *path) { return answer(open(path, O_WRONLY | O_CREAT | O_EXCL, 0600)); }
static int op_mkdir(const char *path) { return answer(mkdir(path, 0700)); }
static int op_unlink(const char *path) { return answer(unlink(path)); }
static int op_chmod(const char *path) { return answer(chmod(path, 0777)); }
static int op_chown(const char *path) { return answer(chown(path, getuid(), getgid())); }

static int op_utime(const char *path)
{
    struct timespec ts[2] = {{.tv_sec = 0}, {.tv_sec = 0}};
    return answer(utimensat(AT_FDCWD, path, ts, 0));
}

/* mmapexec PATH: map a readable file executable */
static int op_mmapexec(const char *path)
{
    int fd = open(path, O_RDONLY);
    if (fd < 0)
        return answer(-1);
    void *p = mmap(NULL, 4096, PROT_READ | PROT_EXEC, MAP_PRIVATE, fd, 0);
    return answer(p == MAP_FAILED ? -1 : 0);
}

/* exec PATH: can PATH be executed? (the child execs it with --version-like
 * harmless arguments and its own output is discarded) */
static int op_exec(const char *path)
{
    pid_t pid = fork();
    if (pid < 0)
        return answer(-1);
    if (pid == 0) {
        int null = open("/dev/null", O_WRONLY);
        if (null >= 0) {
            dup2(null, 1);
            dup2(null, 2);
        }
        char *argv[] = {(char *)path, "--version", NULL};
        execv(path, argv);
        _exit(100 + errno);
    }
    int status;
    if (waitpid(pid, &status, 0) < 0)
        return answer(-1);
    if (WIFEXITED(status) && WEXITSTATUS(status) >= 100) {
        errno = WEXITSTATUS(status) - 100;
        return answer(-1);
    }
    return answer(0);
}

static int unix_connect(const char *path, int abstract)
{
    struct sockaddr_un addr = {.sun_family = AF_UNIX};
    size_t len = strlen(path);
    if (len + 1 >= sizeof addr.sun_path)
        return 3;
    memcpy(addr.sun_path + (abstract ? 1 : 0), path, len);
    int s = socket(AF_UNIX, SOCK_STREAM, 0);
    if (s < 0)
        return answer(-1);
    socklen_t size = offsetof(struct sockaddr_un, sun_path) + len + (abstract ? 1 : 0);
    return answer(connect(s, (struct sockaddr *)&addr, size));
}

/* listen: listen() on a TCP socket never bound (the kernel auto-binds it) */
static int op_listen(void)
{
    int s = socket(AF_INET, SOCK_STREAM, 0);
    if (s < 0)
        return answer(-1);
    return answer(listen(s, 1));
}

/* caps: print this process's capability sets (from /proc/self/status) */
static int op_caps(void)
{
    FILE *f = fopen("/proc/self/status", "r");
    if (!f)
        return answer(-1);
    char line[256];
    while (fgets(line, sizeof line, f))
        if (!strncmp(line, "Cap", 3))
            fputs(line, stdout);
    fclose(f);
    return answer(0);
}

int main(int argc, char **argv)
{
    if (argc < 2)
        goto usage;
    const char *op = argv[1];
    const char *a = argc > 2 ? argv[2] : NULL;
    const char *b = argc > 3 ? argv[3] : NULL;
    if (!strcmp(op, "listen"))
        return op_listen();
    if (!strcmp(op, "caps"))
        return op_caps();
    if (!a)
        goto usage;
    if (!strcmp(op, "read")) return op_read(a);
    if (!strcmp(op, "write")) return op_write(a);
    if (!strcmp(op, "create")) return op_create(a);
    if (!strcmp(op, "mkdir")) return op_mkdir(a);
    if (!strcmp(op, "unlink")) return op_unlink(a);
    if (!strcmp(op, "chmod")) return op_chmod(a);
    if (!strcmp(op, "chown")) return op_chown(a);
    if (!strcmp(op, "utime")) return op_utime(a);
    if (!strcmp(op, "mmapexec")) return op_mmapexec(a);
    if (!strcmp(op, "exec")) return op_exec(a);
    if (!strcmp(op, "unix")) return unix_connect(a, 0);
    if (!strcmp(op, "abstract")) return unix_connect(a, 1);
    if (!strcmp(op, "truncopen")) return op_truncopen(a);
    if (!strcmp(op, "copy") && b) return op_copy(a, b);
    if (!strcmp(op, "ioctl") && b) return op_ioctl(a, b);
usage:
    fprintf(stderr, "usage: fs_probe read|write|create|mkdir|unlink|chmod|chown|utime|mmapexec|exec|unix|abstract|truncopen PATH | copy SRC DST | ioctl PATH REQUEST | listen\n");
    return 3;
}
