/* The floor of the benchmark: a raw C one-shot WebSocket client.
 *
 *   wsclient PORT COUNT MESSAGE
 * Does COUNT calls (connect, upgrade, send MESSAGE masked, read the reply, send a
 * close, read the server's close and EOF) and prints each call's seconds, one a line.
 * It checks the status line and the reply, nothing more: it is a floor, not a client.
 */
#define _GNU_SOURCE
#include <arpa/inet.h>
#include <netinet/in.h>
#include <netinet/tcp.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <time.h>
#include <unistd.h>

static double now(void) {
    struct timespec t;
    clock_gettime(CLOCK_MONOTONIC, &t);
    return (double)t.tv_sec + (double)t.tv_nsec / 1e9;
}

int main(int argc, char **argv) {
    if (argc != 4) { fprintf(stderr, "usage: wsclient PORT COUNT MESSAGE\n"); return 2; }
    int port = atoi(argv[1]), count = atoi(argv[2]);
    const char *msg = argv[3];
    size_t mlen = strlen(msg);
    if (mlen > 125) { fprintf(stderr, "wsclient: message too long\n"); return 2; }
    struct sockaddr_in a = {.sin_family = AF_INET, .sin_port = htons((uint16_t)port)};
    a.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
    const char *request =
        "GET / HTTP/1.1\r\nHost: 127.0.0.1\r\nUpgrade: websocket\r\nConnection: Upgrade\r\n"
        "Sec-WebSocket-Key: dGhlIHNhbXBsZSBub25jZQ==\r\nSec-WebSocket-Version: 13\r\n\r\n";
    unsigned char frame[256], close_frame[8] = {0x88, 0x82, 1, 2, 3, 4, 0x03 ^ 1, 0xe8 ^ 2};
    unsigned char key[4] = {1, 2, 3, 4};
    frame[0] = 0x81;
    frame[1] = (unsigned char)(0x80 | mlen);
    memcpy(frame + 2, key, 4);
    for (size_t i = 0; i < mlen; i++) frame[6 + i] = (unsigned char)msg[i] ^ key[i & 3];
    char buf[4096];
    for (int n = 0; n < count; n++) {
        double start = now();
        int s = socket(AF_INET, SOCK_STREAM, 0), one = 1;
        setsockopt(s, IPPROTO_TCP, TCP_NODELAY, &one, sizeof one);
        if (connect(s, (struct sockaddr *)&a, sizeof a)) { perror("connect"); return 1; }
        if (write(s, request, strlen(request)) < 0) return 1;
        size_t got = 0;
        while (!memmem(buf, got, "\r\n\r\n", 4)) {
            ssize_t r = read(s, buf + got, sizeof buf - got);
            if (r <= 0) { fprintf(stderr, "wsclient: no upgrade\n"); return 1; }
            got += (size_t)r;
        }
        if (strncmp(buf, "HTTP/1.1 101", 12)) { fprintf(stderr, "wsclient: refused\n"); return 1; }
        size_t head = (size_t)((char *)memmem(buf, got, "\r\n\r\n", 4) - buf) + 4;
        got -= head;
        memmove(buf, buf + head, got);
        if (write(s, frame, 6 + mlen) < 0) return 1;
        while (got < 2 + mlen) {
            ssize_t r = read(s, buf + got, sizeof buf - got);
            if (r <= 0) { fprintf(stderr, "wsclient: no reply\n"); return 1; }
            got += (size_t)r;
        }
        if (memcmp(buf + 2, msg, mlen)) { fprintf(stderr, "wsclient: wrong reply\n"); return 1; }
        if (write(s, close_frame, sizeof close_frame) < 0) return 1;
        while (read(s, buf, sizeof buf) > 0) {}
        close(s);
        printf("%.9f\n", now() - start);
    }
    return 0;
}
