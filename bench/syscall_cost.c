/* Time one system call in a loop, optionally under a seccomp BPF program.
 *   syscall_cost BPF_FILE|- N
 * Prints ns per call for setsockopt(TCP_NODELAY) (argument-filtered in
 * corral's agent filter) and getppid (unfiltered). The BPF file is what
 * libseccomp exported; this program only loads it. */
#define _GNU_SOURCE
#include <linux/filter.h>
#include <linux/seccomp.h>
#include <netinet/in.h>
#include <netinet/tcp.h>
#include <stdio.h>
#include <stdlib.h>
#include <sys/prctl.h>
#include <sys/socket.h>
#include <sys/syscall.h>
#include <time.h>
#include <unistd.h>

static double now_ns(void) {
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return ts.tv_sec * 1e9 + ts.tv_nsec;
}

int main(int argc, char **argv) {
    if (argc != 3) { fprintf(stderr, "usage: %s BPF|- N\n", argv[0]); return 2; }
    long n = atol(argv[2]);
    int fd = socket(AF_INET, SOCK_STREAM, 0);
    if (argv[1][0] != '-') {
        static struct sock_filter prog[4096];
        FILE *f = fopen(argv[1], "rb");
        if (!f) { perror("open bpf"); return 2; }
        size_t len = fread(prog, sizeof prog[0], 4096, f);
        fclose(f);
        struct sock_fprog fprog = { .len = (unsigned short)len, .filter = prog };
        if (prctl(PR_SET_NO_NEW_PRIVS, 1, 0, 0, 0) || syscall(SYS_seccomp, SECCOMP_SET_MODE_FILTER, 0, &fprog)) { perror("seccomp"); return 2; }
    }
    int one = 1;
    double t0 = now_ns();
    for (long i = 0; i < n; i++) syscall(SYS_setsockopt, fd, IPPROTO_TCP, TCP_NODELAY, &one, sizeof one);
    double t1 = now_ns();
    for (long i = 0; i < n; i++) syscall(SYS_getppid);
    double t2 = now_ns();
    printf("%.1f %.1f\n", (t1 - t0) / n, (t2 - t1) / n);
    return 0;
}
