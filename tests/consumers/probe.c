/* One static probe for the consumer tests: each argument names a check; it
 * prints "check=N" where N is 0 on success or the errno of the failure, so a
 * test can assert the kernel's answer under a runtime that applied corral's
 * artifact. "i386" and "x32" make a foreign-ABI system call and print only if
 * they survive (a filter must kill them). Built with gcc -static by the tests. */
#define _GNU_SOURCE
#include <errno.h>
#include <fcntl.h>
#include <pthread.h>
#include <sched.h>
#include <stdio.h>
#include <string.h>
#include <sys/mount.h>
#include <sys/socket.h>
#include <sys/syscall.h>
#include <unistd.h>

static void *thread_main(void *arg) { return arg; }

static long result(long rc) { return rc < 0 ? errno : 0; }

static long check(const char *name, const char *arg) {
    if (!strcmp(name, "threads")) {
        pthread_t t;
        int rc = pthread_create(&t, NULL, thread_main, NULL);
        if (!rc) pthread_join(t, NULL);
        return rc;
    }
    if (!strcmp(name, "clone3")) return result(syscall(435, NULL, 0));
    if (!strcmp(name, "openat2")) return result(syscall(437, AT_FDCWD, "/", NULL, 0));
    if (!strcmp(name, "ptrace")) return result(syscall(SYS_ptrace, 0x4206 /* PTRACE_SEIZE */, 1, 0, 0));
    if (!strcmp(name, "mount")) return result(mount("none", "/mnt", "tmpfs", 0, NULL));
    if (!strcmp(name, "unshare")) return result(unshare(CLONE_NEWUSER));
    if (!strcmp(name, "getpid")) return result(syscall(SYS_getpid));
    if (!strcmp(name, "getpgid")) return result(syscall(SYS_getpgid, 1));
    if (!strcmp(name, "inet")) { int fd = socket(AF_INET, SOCK_STREAM, 0); if (fd >= 0) close(fd); return fd < 0 ? errno : 0; }
    if (!strcmp(name, "udplite")) { int fd = socket(AF_INET, SOCK_DGRAM, 136); if (fd >= 0) close(fd); return fd < 0 ? errno : 0; }
    if (!strcmp(name, "read")) { int fd = open(arg, O_RDONLY); if (fd >= 0) close(fd); return fd < 0 ? errno : 0; }
    if (!strcmp(name, "write")) { int fd = open(arg, O_WRONLY | O_CREAT, 0600); if (fd >= 0) close(fd); return fd < 0 ? errno : 0; }
#if defined(__x86_64__)
    if (!strcmp(name, "i386")) { long rc; __asm__ volatile("int $0x80" : "=a"(rc) : "a"(20L) : "memory"); return 0; }
    if (!strcmp(name, "x32")) return result(syscall(0x40000000L | 39 /* getpid */));
#endif
    return -1;
}

int main(int argc, char **argv) {
    setvbuf(stdout, NULL, _IONBF, 0);
    for (int i = 1; i < argc; i++) {
        char name[64], *arg;
        snprintf(name, sizeof name, "%s", argv[i]);
        if ((arg = strchr(name, ':'))) *arg = '\0', arg = strchr(argv[i], ':') + 1;
        printf("%s=%ld\n", argv[i], check(name, arg));
    }
    return 0;
}
