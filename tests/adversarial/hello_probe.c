/* A hand-built TLS ClientHello, for attacks on corral run's TLS relay: the
 * relay must read the handshake exactly as the server will, so every
 * ambiguity (an extension twice, two names in one server_name list) is an
 * attack on it. One ClientHello per run; the last stdout token is "ok" if
 * the peer answered anything, else "errno=NAME".
 *
 *   hello_probe IP PORT EXT...
 *
 * Each EXT becomes one extension, in order:
 *   sni=NAME        a server_name extension naming NAME
 *   sni=NAME,NAME2  one server_name extension listing both names
 *   alpn=P1,P2      an ALPN extension offering P1 then P2
 * "then" ends the first ClientHello: the probe reads the server's answer
 * (a HelloRetryRequest, say) and sends a ChangeCipherSpec record and a
 * second ClientHello built from the EXTs after it.
 */
#include "probe.h"
#include <arpa/inet.h>
#include <errno.h>
#include <netinet/in.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <unistd.h>

static size_t put16(uint8_t *p, unsigned v) { p[0] = v >> 8; p[1] = v & 255; return 2; }

/* items "a,b,c" as a list of (1- or 3-byte length prefixed) entries */
static size_t list(uint8_t *out, const char *items, int sni) {
    size_t n = 0;
    char copy[512];
    snprintf(copy, sizeof copy, "%s", items);
    for (char *save = NULL, *item = strtok_r(copy, ",", &save); item; item = strtok_r(NULL, ",", &save)) {
        size_t l = strlen(item);
        if (sni) { out[n++] = 0; n += put16(out + n, l); }
        else out[n++] = (uint8_t)l;
        memcpy(out + n, item, l);
        n += l;
    }
    return n;
}

/* One ClientHello record from argv[from..to) into rec; its length. */
static size_t client_hello(uint8_t *rec, char **argv, int from, int to) {
    static uint8_t ext[4096], body[5000], entries[1024];
    size_t e = 0, b = 0, r = 0;
    for (int i = from; i < to; i++) {
        int sni = !strncmp(argv[i], "sni=", 4);
        if (!sni && strncmp(argv[i], "alpn=", 5)) exit(2);
        size_t n = list(entries, strchr(argv[i], '=') + 1, sni);
        e += put16(ext + e, sni ? 0 : 16);
        e += put16(ext + e, n + 2);
        e += put16(ext + e, n);
        memcpy(ext + e, entries, n);
        e += n;
    }
    body[b++] = 3; body[b++] = 3;                          /* legacy_version TLS 1.2 */
    memset(body + b, 7, 32); b += 32;                      /* random */
    body[b++] = 0;                                         /* session id */
    b += put16(body + b, 2); b += put16(body + b, 0xC02F); /* one suite */
    body[b++] = 1; body[b++] = 0;                          /* null compression */
    b += put16(body + b, e);
    memcpy(body + b, ext, e); b += e;
    rec[r++] = 22; rec[r++] = 3; rec[r++] = 1;
    r += put16(rec + r, b + 4);
    rec[r++] = 1; rec[r++] = 0; r += put16(rec + r, b);
    memcpy(rec + r, body, b); r += b;
    return r;
}

int main(int argc, char **argv) {
    setvbuf(stdout, NULL, _IONBF, 0);
    if (argc < 4) return 2;
    static uint8_t rec[5200];
    int split = argc;
    for (int i = 3; i < argc; i++)
        if (!strcmp(argv[i], "then")) split = i;
    size_t r = client_hello(rec, argv, 3, split);
    struct sockaddr_in a = {.sin_family = AF_INET, .sin_port = htons(atoi(argv[2]))};
    inet_pton(AF_INET, argv[1], &a.sin_addr);
    int s = socket(AF_INET, SOCK_STREAM, 0);
    if (connect(s, (struct sockaddr *)&a, sizeof a) < 0) return answer(-1);
    if (write(s, rec, r) != (ssize_t)r) return answer(-1);
    char buf[4096];
    ssize_t got = read(s, buf, sizeof buf);
    if (got == 0) { errno = ECONNRESET; return answer(-1); }
    if (got < 0 || split == argc) return answer((int)got);
    static const uint8_t ccs[6] = {20, 3, 3, 0, 1, 1};
    r = client_hello(rec, argv, split + 1, argc);
    if (write(s, ccs, sizeof ccs) != (ssize_t)sizeof ccs || write(s, rec, r) != (ssize_t)r) return answer(-1);
    got = read(s, buf, sizeof buf);
    if (got == 0) { errno = ECONNRESET; return answer(-1); }
    return answer((int)got);
}
