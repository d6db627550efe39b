/* The harness's own probe: proves that a probe runs, that its answers are
 * read, and that the plain file rules hold for it. One attack per call:
 *   sanity_probe read PATH     open(PATH, O_RDONLY)
 *   sanity_probe write PATH    open(PATH, O_WRONLY|O_CREAT|O_TRUNC)
 *   sanity_probe list PATH     open(PATH, O_DIRECTORY) and getdents64
 */
#include "probe.h"
#include <errno.h>
#include <fcntl.h>
#include <stdio.h>
#include <string.h>
#include <sys/syscall.h>
#include <unistd.h>

int main(int argc, char **argv) {
    if (argc < 3) return 64;
    if (!strcmp(argv[1], "read")) return answer(open(argv[2], O_RDONLY));
    if (!strcmp(argv[1], "write")) return answer(open(argv[2], O_WRONLY | O_CREAT | O_TRUNC, 0600));
    if (!strcmp(argv[1], "list")) {
        int fd = open(argv[2], O_RDONLY | O_DIRECTORY);
        if (fd < 0) return answer(fd);
        char buf[4096];
        return answer(syscall(SYS_getdents64, fd, buf, sizeof buf));
    }
    return 64;
}
