/* What a learned policy must refuse, whatever program it was learned from.
 * One attack per call; prints "ok" or "errno=NAME":
 *   learned_probe read PATH          open(PATH, O_RDONLY) and read a byte
 *   learned_probe write PATH         open(PATH, O_WRONLY|O_CREAT|O_TRUNC)
 *   learned_probe connect IP PORT    a TCP connect to IP:PORT
 *   learned_probe exec PATH          execve(PATH, {PATH, "-c", "exit 0"})
 */
#include "probe.h"
#include <arpa/inet.h>
#include <errno.h>
#include <fcntl.h>
#include <netinet/in.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <unistd.h>

int main(int argc, char **argv) {
    if (argc < 3) return 64;
    const char *op = argv[1];
    if (!strcmp(op, "read")) {
        int fd = open(argv[2], O_RDONLY);
        if (fd < 0) return answer(-1);
        char c;
        return answer(read(fd, &c, 1));
    }
    if (!strcmp(op, "write")) return answer(open(argv[2], O_WRONLY | O_CREAT | O_TRUNC, 0600));
    if (!strcmp(op, "connect") && argc > 3) {
        int s = socket(AF_INET, SOCK_STREAM, 0);
        if (s < 0) return answer(-1);
        struct sockaddr_in sin = {.sin_family = AF_INET, .sin_port = htons(atoi(argv[3]))};
        inet_pton(AF_INET, argv[2], &sin.sin_addr);
        return answer(connect(s, (struct sockaddr *)&sin, sizeof sin));
    }
    if (!strcmp(op, "exec")) {
        char *args[] = {argv[2], "-c", "exit 0", NULL};
        execve(argv[2], args, NULL);
        return answer(-1);
    }
    return 64;
}
