/* ns per connect(2) to IP:PORT, N times (socket and close not timed):
 * prints the mean, the number that failed, and the median (the median
 * resists a busy machine's preemptions, which the mean takes in whole).
 * Usage: connect_cost IP PORT N [nonblock] */
#include <arpa/inet.h>
#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <time.h>
#include <unistd.h>

static int by_value(const void *a, const void *b) {
    long long x = *(const long long *)a, y = *(const long long *)b;
    return (x > y) - (x < y);
}

int main(int argc, char **argv) {
    if (argc < 4 || atoi(argv[3]) <= 0) return 2;
    struct sockaddr_in a;
    memset(&a, 0, sizeof a);
    a.sin_family = AF_INET;
    a.sin_port = htons((unsigned short)atoi(argv[2]));
    inet_pton(AF_INET, argv[1], &a.sin_addr);
    int n = atoi(argv[3]), flags = argc > 4 ? SOCK_NONBLOCK : 0, failed = 0;
    long long total = 0, *each = calloc(n > 0 ? n : 1, sizeof *each);
    for (int i = 0; i < n; i++) {
        int s = socket(AF_INET, SOCK_STREAM | flags, 0);
        struct timespec t0, t1;
        clock_gettime(CLOCK_MONOTONIC, &t0);
        int r = connect(s, (struct sockaddr *)&a, sizeof a);
        clock_gettime(CLOCK_MONOTONIC, &t1);
        if (r < 0 && errno != EINPROGRESS) failed++;
        each[i] = (t1.tv_sec - t0.tv_sec) * 1000000000LL + (t1.tv_nsec - t0.tv_nsec);
        total += each[i];
        close(s);
    }
    qsort(each, n, sizeof *each, by_value);
    printf("%lld %d %lld\n", total / n, failed, each[n / 2]);
    return failed ? 1 : 0;
}
