/* Plain HTTP requests written as an attacker would: several on one
 * connection, pipelined, in one write. The last stdout token is "ok" if the
 * connection ended cleanly, else "errno=NAME"; before it, "responses=N"
 * counts the status lines that came back.
 *
 *   http_probe IP PORT REQUEST...
 *
 * Each REQUEST is sent as given, with every "|" replaced by CR LF.
 */
#include "probe.h"
#include <arpa/inet.h>
#include <errno.h>
#include <netinet/in.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <unistd.h>

static int report(int ret, int responses) {
    printf("responses=%d\n", responses);
    return answer(ret);
}

int main(int argc, char **argv) {
    setvbuf(stdout, NULL, _IONBF, 0);
    if (argc < 4) return 2;
    static char out[65536];
    size_t n = 0;
    for (int i = 3; i < argc; i++)
        for (const char *p = argv[i]; *p && n + 2 < sizeof out; p++) {
            if (*p == '|') { out[n++] = '\r'; out[n++] = '\n'; }
            else out[n++] = *p;
        }
    struct sockaddr_in a = {.sin_family = AF_INET, .sin_port = htons(atoi(argv[2]))};
    inet_pton(AF_INET, argv[1], &a.sin_addr);
    int s = socket(AF_INET, SOCK_STREAM, 0);
    if (connect(s, (struct sockaddr *)&a, sizeof a) < 0) return report(-1, 0);
    if (write(s, out, n) != (ssize_t)n) return report(-1, 0);
    shutdown(s, SHUT_WR);
    static char in[1 << 20];
    size_t got = 0;
    ssize_t r;
    while ((r = read(s, in + got, sizeof in - 1 - got)) > 0) got += r;
    in[got] = 0;
    int responses = 0;
    for (char *p = in; (p = strstr(p, "HTTP/1.1 ")); p++) responses++;
    return report(r < 0 ? -1 : 0, responses);
}
