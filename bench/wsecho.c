/* A small epoll WebSocket server for the benchmark: fast enough not to be the
 * bottleneck, so the clients' own costs show. Single thread, edge cases ignored:
 * it serves well-formed clients on loopback, nothing else.
 *
 *   wsecho PORT        echo every text message back, unmasked, in one frame;
 *                      path /silent never replies (for the memory benchmark);
 *                      answers a close frame with a close frame, then closes.
 * It prints "ready" once listening and stops on SIGTERM.
 */
#define _GNU_SOURCE
#include <arpa/inet.h>
#include <errno.h>
#include <netinet/in.h>
#include <netinet/tcp.h>
#include <signal.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/epoll.h>
#include <sys/socket.h>
#include <unistd.h>

#define BUF 65536
#define MAXFD 65536

typedef struct { int open; int upgraded; int silent; size_t len; unsigned char *buf; } conn_t;
static conn_t conns[MAXFD];

/* SHA-1 (FIPS 180-1), enough for Sec-WebSocket-Accept. */
static uint32_t rol(uint32_t v, int b) { return (v << b) | (v >> (32 - b)); }
static void sha1(const unsigned char *msg, size_t len, unsigned char out[20]) {
    uint32_t h[5] = {0x67452301, 0xEFCDAB89, 0x98BADCFE, 0x10325476, 0xC3D2E1F0};
    size_t total = ((len + 8) / 64 + 1) * 64;
    unsigned char *m = calloc(total, 1);
    memcpy(m, msg, len);
    m[len] = 0x80;
    uint64_t bits = (uint64_t)len * 8;
    for (int i = 0; i < 8; i++) m[total - 1 - i] = (unsigned char)(bits >> (8 * i));
    for (size_t off = 0; off < total; off += 64) {
        uint32_t w[80];
        for (int i = 0; i < 16; i++)
            w[i] = (uint32_t)m[off + 4 * i] << 24 | (uint32_t)m[off + 4 * i + 1] << 16 |
                   (uint32_t)m[off + 4 * i + 2] << 8 | m[off + 4 * i + 3];
        for (int i = 16; i < 80; i++) w[i] = rol(w[i - 3] ^ w[i - 8] ^ w[i - 14] ^ w[i - 16], 1);
        uint32_t a = h[0], b = h[1], c = h[2], d = h[3], e = h[4];
        for (int i = 0; i < 80; i++) {
            uint32_t f, k;
            if (i < 20) { f = (b & c) | (~b & d); k = 0x5A827999; }
            else if (i < 40) { f = b ^ c ^ d; k = 0x6ED9EBA1; }
            else if (i < 60) { f = (b & c) | (b & d) | (c & d); k = 0x8F1BBCDC; }
            else { f = b ^ c ^ d; k = 0xCA62C1D6; }
            uint32_t t = rol(a, 5) + f + e + k + w[i];
            e = d; d = c; c = rol(b, 30); b = a; a = t;
        }
        h[0] += a; h[1] += b; h[2] += c; h[3] += d; h[4] += e;
    }
    free(m);
    for (int i = 0; i < 5; i++)
        for (int j = 0; j < 4; j++) out[4 * i + j] = (unsigned char)(h[i] >> (24 - 8 * j));
}

static void base64(const unsigned char *in, int len, char *out) {
    static const char t[] = "ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789+/";
    int o = 0;
    for (int i = 0; i < len; i += 3) {
        uint32_t v = in[i] << 16 | (i + 1 < len ? in[i + 1] << 8 : 0) | (i + 2 < len ? in[i + 2] : 0);
        out[o++] = t[v >> 18 & 63];
        out[o++] = t[v >> 12 & 63];
        out[o++] = i + 1 < len ? t[v >> 6 & 63] : '=';
        out[o++] = i + 2 < len ? t[v & 63] : '=';
    }
    out[o] = 0;
}

static void drop(int ep, int fd) {
    epoll_ctl(ep, EPOLL_CTL_DEL, fd, NULL);
    close(fd);
    free(conns[fd].buf);
    memset(&conns[fd], 0, sizeof(conn_t));
}

static int handshake(int fd, conn_t *c) {
    c->buf[c->len] = 0;
    char *end = strstr((char *)c->buf, "\r\n\r\n");
    if (!end) return 0;
    char *key = strcasestr((char *)c->buf, "Sec-WebSocket-Key:");
    if (!key) return -1;
    key += 18;
    while (*key == ' ') key++;
    char *eol = strstr(key, "\r\n");
    char joined[128];
    int n = snprintf(joined, sizeof joined, "%.*s258EAFA5-E914-47DA-95CA-C5AB0DC85B11",
                     (int)(eol - key), key);
    unsigned char digest[20];
    sha1((unsigned char *)joined, (size_t)n, digest);
    char accept[32];
    base64(digest, 20, accept);
    c->silent = strncmp((char *)c->buf, "GET /silent", 11) == 0;
    char reply[256];
    int m = snprintf(reply, sizeof reply,
                     "HTTP/1.1 101 Switching Protocols\r\nUpgrade: websocket\r\n"
                     "Connection: Upgrade\r\nSec-WebSocket-Accept: %s\r\n\r\n", accept);
    if (write(fd, reply, (size_t)m) != m) return -1;
    size_t used = (size_t)(end + 4 - (char *)c->buf);
    memmove(c->buf, c->buf + used, c->len - used);
    c->len -= used;
    c->upgraded = 1;
    return 1;
}

/* Returns -1 to drop the connection. */
static int frames(int fd, conn_t *c) {
    for (;;) {
        if (c->len < 2) return 0;
        unsigned char *p = c->buf;
        int opcode = p[0] & 15, masked = p[1] & 128;
        uint64_t len = p[1] & 127;
        size_t head = 2;
        if (len == 126) { if (c->len < 4) return 0; len = (uint64_t)p[2] << 8 | p[3]; head = 4; }
        else if (len == 127) return -1;
        if (masked) head += 4;
        if (c->len < head + len) return 0;
        unsigned char *data = p + head;
        if (masked)
            for (uint64_t i = 0; i < len; i++) data[i] ^= p[head - 4 + (i & 3)];
        unsigned char out[BUF + 8];
        size_t o = 0;
        if (opcode == 8) {
            out[o++] = 0x88; out[o++] = (unsigned char)(len < 2 ? 0 : 2);
            if (len >= 2) { out[o++] = data[0]; out[o++] = data[1]; }
            if (write(fd, out, o) < 0) return -1;
            return -1;
        }
        if ((opcode == 1 || opcode == 2) && !c->silent) {
            out[o++] = (unsigned char)(0x80 | opcode);
            if (len < 126) out[o++] = (unsigned char)len;
            else { out[o++] = 126; out[o++] = (unsigned char)(len >> 8); out[o++] = (unsigned char)len; }
            memcpy(out + o, data, len);
            o += len;
            if (write(fd, out, o) != (ssize_t)o) return -1;
        }
        memmove(c->buf, c->buf + head + len, c->len - head - len);
        c->len -= head + len;
    }
}

static volatile sig_atomic_t stop = 0;
static void on_term(int s) { (void)s; stop = 1; }

int main(int argc, char **argv) {
    if (argc != 2) { fprintf(stderr, "usage: wsecho PORT\n"); return 2; }
    signal(SIGTERM, on_term);
    signal(SIGPIPE, SIG_IGN);
    int ls = socket(AF_INET, SOCK_STREAM | SOCK_NONBLOCK, 0), one = 1;
    setsockopt(ls, SOL_SOCKET, SO_REUSEADDR, &one, sizeof one);
    struct sockaddr_in a = {.sin_family = AF_INET, .sin_port = htons((uint16_t)atoi(argv[1]))};
    a.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
    if (bind(ls, (struct sockaddr *)&a, sizeof a) || listen(ls, 4096)) { perror("wsecho"); return 1; }
    int ep = epoll_create1(0);
    struct epoll_event ev = {.events = EPOLLIN, .data.fd = ls};
    epoll_ctl(ep, EPOLL_CTL_ADD, ls, &ev);
    printf("ready\n");
    fflush(stdout);
    struct epoll_event events[256];
    while (!stop) {
        int n = epoll_wait(ep, events, 256, 200);
        for (int i = 0; i < n; i++) {
            int fd = events[i].data.fd;
            if (fd == ls) {
                int c;
                while ((c = accept4(ls, NULL, NULL, SOCK_NONBLOCK)) >= 0) {
                    if (c >= MAXFD) { close(c); continue; }
                    setsockopt(c, IPPROTO_TCP, TCP_NODELAY, &one, sizeof one);
                    conns[c].open = 1;
                    conns[c].buf = malloc(BUF + 1);
                    struct epoll_event cev = {.events = EPOLLIN, .data.fd = c};
                    epoll_ctl(ep, EPOLL_CTL_ADD, c, &cev);
                }
                continue;
            }
            conn_t *c = &conns[fd];
            ssize_t r = read(fd, c->buf + c->len, BUF - c->len);
            if (r <= 0) { drop(ep, fd); continue; }
            c->len += (size_t)r;
            int status = c->upgraded ? 1 : handshake(fd, c);
            if (status < 0 || (status > 0 && frames(fd, c) < 0)) drop(ep, fd);
        }
    }
    return 0;
}
