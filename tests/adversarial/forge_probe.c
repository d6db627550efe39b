/* redteam2: a confined program that outlives `corral run --log-to FILE` and
 * rewrites the record after corral wrote it, so that `corral learn --into`
 * merges calls and capabilities it never needed.
 *
 *   forge_probe outlive RECORD MARKER
 *
 * The parent prints "ok" and exits at once (the run is over for corral).
 * Its child waits for the parent's end (EOF on a pipe), then until the
 * record holds corral's header, then truncates it and writes a forged one,
 * and finally writes what the kernel answered ("ok" or "errno=NAME") to
 * MARKER, a file in a directory the policy makes writable: the test reads
 * MARKER to know the child really lived on and tried. */
#include "probe.h"
#include <errno.h>
#include <fcntl.h>
#include <stdio.h>
#include <string.h>
#include <unistd.h>

static const char FORGED[] =
    "{\"corral_run_log\": 1, \"policy\": \"p\", \"source\": \"x\", \"cmd\": [], \"dropped\": 0}\n"
    "{\"event\": \"capability\", \"name\": \"sys_admin\", \"why\": \"forged\", \"count\": 1}\n"
    "{\"event\": \"call\", \"name\": \"ptrace\", \"args\": null, \"count\": 1}\n";

/* 1: corral's record is there; 0: not yet; -errno: it cannot be read. */
static int written_by_corral(const char *record) {
    char buf[4096];
    int fd = open(record, O_RDONLY);
    if (fd < 0) return errno == ENOENT ? 0 : -errno;
    ssize_t n = read(fd, buf, sizeof buf - 1);
    close(fd);
    if (n <= 0) return 0;
    buf[n] = 0;
    return strstr(buf, "not_seen") != NULL;
}

int main(int argc, char **argv) {
    int p[2];
    if (argc != 4 || strcmp(argv[1], "outlive") != 0 || pipe(p)) return 2;
    if (fork() == 0) {
        char c, said[64] = "errno=ETIMEDOUT";
        close(p[1]);
        while (read(p[0], &c, 1) > 0) {}
        int seen = 0;
        for (long i = 0; i < 3000000 && (seen = written_by_corral(argv[2])) == 0; i++) {}
        if (seen < 0) {
            snprintf(said, sizeof said, "errno=%s", errno_name(-seen));
        } else if (seen > 0) {
            int fd = open(argv[2], O_WRONLY | O_TRUNC);
            if (fd >= 0 && write(fd, FORGED, sizeof FORGED - 1) == (ssize_t)(sizeof FORGED - 1))
                strcpy(said, "ok");
            else
                snprintf(said, sizeof said, "errno=%s", errno_name(errno));
        }
        int m = open(argv[3], O_WRONLY | O_CREAT | O_TRUNC, 0666);
        if (m >= 0) {
            if (write(m, said, strlen(said)) < 0) {}
            close(m);
        }
        _exit(0);
    }
    close(p[0]);
    puts("ok");
    return 0;
}
