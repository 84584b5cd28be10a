/*
 * httputil.h: a minimal HTTP/1.1 client over a raw socket for the serve
 * tests (header-only: static helpers). One request per connection
 * ("Connection: close"), the whole response read into memory.
 */
#ifndef BR_HTTPUTIL_H
#define BR_HTTPUTIL_H

#include <arpa/inet.h>
#include <netinet/in.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>
#include <sys/socket.h>
#include <sys/time.h>
#include <unistd.h>

typedef struct tu_resp {
    int status;       /* -1: no response (connection failed) */
    char *raw;        /* the whole response, NUL-terminated */
    const char *body; /* into raw */
    size_t body_len;
} tu_resp;

static inline void tu_resp_free(tu_resp *r)
{
    free(r->raw);
    memset(r, 0, sizeof *r);
}

/* The value of header `name` (case-insensitive) copied into buf; 0 if found. */
static inline int tu_resp_header(const tu_resp *r, const char *name, char *buf, size_t cap)
{
    if (!r->raw) return -1;
    size_t nl = strlen(name);
    for (const char *p = strstr(r->raw, "\r\n"); p && p + 2 < r->body; p = strstr(p + 2, "\r\n")) {
        const char *line = p + 2;
        if (!strncasecmp(line, name, nl) && line[nl] == ':') {
            const char *v = line + nl + 1;
            while (*v == ' ') v++;
            const char *e = strstr(v, "\r\n");
            size_t n = e ? (size_t)(e - v) : strlen(v);
            if (n >= cap) n = cap - 1;
            memcpy(buf, v, n);
            buf[n] = 0;
            return 0;
        }
    }
    return -1;
}

/* Sends `request` as it is (any bytes, any framing); the status of what
 * comes back, -1 when nothing parseable does. */
static inline int tu_raw(int port, const char *request, size_t len, tu_resp *out)
{
    memset(out, 0, sizeof *out);
    out->status = -1;
    int fd = socket(AF_INET, SOCK_STREAM, 0);
    if (fd < 0) return -1;
    struct timeval tv = {30, 0};
    setsockopt(fd, SOL_SOCKET, SO_RCVTIMEO, &tv, sizeof tv);
    struct sockaddr_in a = {.sin_family = AF_INET, .sin_port = htons((uint16_t)port)};
    a.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
    if (connect(fd, (struct sockaddr *)&a, sizeof a) != 0) {
        close(fd);
        return -1;
    }
    size_t sent = 0;
    while (sent < len) {
        ssize_t w = send(fd, request + sent, len - sent, MSG_NOSIGNAL);
        if (w <= 0) break; /* the server may answer and close early */
        sent += (size_t)w;
    }
    shutdown(fd, SHUT_WR);
    size_t cap = 65536, n = 0;
    char *buf = malloc(cap);
    ssize_t r;
    while ((r = recv(fd, buf + n, cap - n - 1, 0)) > 0) {
        n += (size_t)r;
        if (n + 4096 > cap) buf = realloc(buf, cap *= 2);
    }
    close(fd);
    buf[n] = 0;
    out->raw = buf;
    const char *sep = strstr(buf, "\r\n\r\n");
    if (n < 12 || strncmp(buf, "HTTP/1.", 7) != 0 || !sep) return -1;
    out->status = atoi(buf + 9);
    out->body = sep + 4;
    out->body_len = n - (size_t)(out->body - buf);
    return out->status;
}

/* Sends one request; returns the status (-1 on a connection failure). */
static inline int tu_http(int port, const char *method, const char *path, const char *headers,
                          const char *body, size_t body_len, tu_resp *out)
{
    size_t cap = 4096 + strlen(path) + (headers ? strlen(headers) : 0) + (body ? body_len : 0);
    char *req = malloc(cap);
    int hn = snprintf(req, cap,
                      "%s %s HTTP/1.1\r\nHost: 127.0.0.1\r\nConnection: close\r\n%s"
                      "Content-Length: %zu\r\n\r\n",
                      method, path, headers ? headers : "", body ? body_len : 0);
    if (body) memcpy(req + hn, body, body_len);
    int st = tu_raw(port, req, (size_t)hn + (body ? body_len : 0), out);
    free(req);
    return st;
}

static inline int tu_get(int port, const char *path, tu_resp *out)
{
    return tu_http(port, "GET", path, NULL, NULL, 0, out);
}

static inline int tu_post(int port, const char *path, const char *headers, const char *body,
                          tu_resp *out)
{
    return tu_http(port, "POST", path, headers, body, strlen(body), out);
}

#endif
