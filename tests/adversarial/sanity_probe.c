/* The harness's own probe: proves that a probe runs, that its answers are
 * read, and that the plain file rules hold for it. One attack per call:
 *   sanity_probe read PATH     open(PATH, O_RDONLY)
 *   sanity_probe write PATH    open(PATH, O_WRONLY|O_CREAT|O_TRUNC)
 */
#include <errno.h>
#include <fcntl.h>
#include <stdio.h>
#include <string.h>
#include <unistd.h>

static int answer(long ret) {
    if (ret < 0) {
        const char *name = strerrorname_np(errno);
        printf("errno=%s\n", name ? name : "?");
    } else {
        printf("ok\n");
    }
    return 0;
}

int main(int argc, char **argv) {
    if (argc < 3) return 64;
    if (!strcmp(argv[1], "read")) return answer(open(argv[2], O_RDONLY));
    if (!strcmp(argv[1], "write")) return answer(open(argv[2], O_WRONLY | O_CREAT | O_TRUNC, 0600));
    return 64;
}
