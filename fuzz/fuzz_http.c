/*
 * fuzz_http.c: libFuzzer target for the HTTP request path: the real server
 * (br_server_start, on a copy of the seed universe's model trained once by
 * fuzz_util.h, with its LMDB store and event log) runs in this process on
 * a free loopback port, and each input is sent as the raw bytes of a
 * connection (request line, route, query string, headers, body; several
 * requests when the input holds several), the sending side then closed.
 * The answer is read until the server closes or goes quiet after answering
 * (exchange()). Fails on: neither within 5 s for a whole request
 * (complete(); a hang); any 5xx but 503 (documented: no model, the store
 * or the log unavailable) and libmicrohttpd's own 501 and 505 (an unknown
 * method, an HTTP version before 1.0); /healthz then not answering 200.
 */
#define FUZZ_WANT_MODEL
#include "fuzz_util.h"

#include <errno.h>
#include <netinet/in.h>
#include <poll.h>
#include <sys/socket.h>
#include <time.h>

static br_server *srv;
static uint16_t port;

int LLVMFuzzerInitialize(int *argc, char ***argv)
{
    (void)argc, (void)argv;
    const char *trained = fz_model_dir();
    if (!trained) return 0;
    /* A private copy on fz_tmpdir() (tmpfs when there is one): a fresh
     * store and event log per run, whose fsyncs do not wait on a busy
     * disk (a 5 s deadline is no place for one). */
    static char m[PATH_MAX];
    fz_copy_tree(trained, fz_path(m, sizeof m, "model"));
    br_server_options o = BR_SERVER_OPTIONS_DEFAULT;
    o.model_dir = m;
    o.port = 0;
    o.no_watch = 1;
    if (br_server_start(&o, &srv) != BR_OK) {
        fprintf(stderr, "fuzz_http: the server does not start: %s\n", br_error_detail());
        abort();
    }
    port = br_server_port(srv);
    fprintf(stderr, "fuzz_http: serving %s on 127.0.0.1:%u\n", m, port);
    return 0;
}

static double now(void)
{
    struct timespec t;
    clock_gettime(CLOCK_MONOTONIC, &t);
    return (double)t.tv_sec + t.tv_nsec / 1e9;
}

/* Sends `req`, closes the sending side, reads the answer into `out` (cap
 * bytes kept, NUL-terminated) until the server closes, or until an answer
 * has come (its head at least) and nothing more for QUIET seconds: the
 * server need not notice a client's half-close after answering (MHD, edge-
 * triggered epoll: the connection then idles until its timeout). Returns
 * the length, or -1 when the deadline passed first. */
#define QUIET 0.1
static long exchange(const uint8_t *req, size_t len, char *out, size_t cap, double deadline,
                     size_t *got_out)
{
    struct sockaddr_in a = {
        .sin_family = AF_INET, .sin_port = htons(port), .sin_addr.s_addr = htonl(INADDR_LOOPBACK)};
    int fd = -1;
    for (int tries = 0; fd < 0; tries++) { /* a refusal must not last (say why if it does) */
        fd = socket(AF_INET, SOCK_STREAM | SOCK_CLOEXEC, 0);
        if (fd < 0) abort();
        if (connect(fd, (struct sockaddr *)&a, sizeof a) == 0) break;
        int err = errno;
        close(fd);
        fd = -1;
        if (tries == 200) {
            fprintf(stderr, "fuzz_http: connect for 2 s: %s\n", strerror(err));
            abort();
        }
        usleep(10000);
    }
    double end = now() + deadline;
    size_t off = 0, got = 0;
    int wr_open = 1, answered = 0;
    long ret = -1;
    if (!len) shutdown(fd, SHUT_WR), wr_open = 0;
    out[0] = '\0';
    for (;;) {
        double left = end - now();
        if (left <= 0) break;
        double wait = !wr_open && answered && left > QUIET ? QUIET : left;
        struct pollfd p = {fd, POLLIN | (wr_open ? POLLOUT : 0), 0};
        int k = poll(&p, 1, (int)(wait * 1000) + 1);
        if (k < 0 && errno != EINTR) abort();
        if (k == 0 && !wr_open && answered) {
            ret = (long)got;
            break;
        }
        if (wr_open && (p.revents & POLLOUT)) {
            ssize_t w = send(fd, req + off, len - off, MSG_NOSIGNAL | MSG_DONTWAIT);
            if (w > 0) off += (size_t)w;
            if (w < 0 && errno != EAGAIN) off = len; /* the server closed: read what it said */
            if (off == len) shutdown(fd, SHUT_WR), wr_open = 0;
        }
        if (p.revents & (POLLIN | POLLHUP | POLLERR)) {
            char buf[4096];
            ssize_t r = recv(fd, buf, sizeof buf, MSG_DONTWAIT);
            if (r == 0 || (r < 0 && errno != EAGAIN && errno != EINTR)) {
                ret = (long)got;
                break;
            }
            if (r > 0 && got < cap - 1) {
                size_t c = (size_t)r < cap - 1 - got ? (size_t)r : cap - 1 - got;
                memcpy(out + got, buf, c);
                got += c;
                out[got] = '\0';
                answered = strstr(out, "\r\n\r\n") != NULL;
            }
        }
    }
    /* A reset, not a FIN: the server then frees the connection at once even
     * when it missed the half-close (complete()); else each such one would
     * count against the per-address limit until the request deadline. */
    struct linger lg = {1, 0};
    setsockopt(fd, SOL_SOCKET, SO_LINGER, &lg, sizeof lg);
    close(fd);
    *got_out = got;
    return ret;
}

/* 1 when `req` holds at least one whole request: a head that ends (a blank
 * line) and, when it declares a Content-Length, that many bytes after it;
 * chunked bodies count as incomplete. The server may legitimately wait for
 * the rest of an incomplete one: the client's half-close then ends it, but
 * libmicrohttpd does not always see a FIN that came with the data (edge-
 * triggered epoll), and the connection is then closed by the server's
 * request deadline (10 s), not at once. */
static int complete(const uint8_t *req, size_t len)
{
    const char *r = (const char *)req, *end = memmem(r, len, "\r\n\r\n", 4);
    size_t head = end ? (size_t)(end - r) + 4 : 0;
    if (!end) {
        end = memmem(r, len, "\n\n", 2);
        if (!end) return 0;
        head = (size_t)(end - r) + 2;
    }
    char h[8192];
    size_t n = head < sizeof h - 1 ? head : sizeof h - 1;
    for (size_t i = 0; i < n; i++) h[i] = (char)(r[i] >= 'A' && r[i] <= 'Z' ? r[i] + 32 : r[i]);
    h[n] = '\0';
    if (memchr(h, '\0', n) || strstr(h, "transfer-encoding")) return 0;
    const char *cl = strstr(h, "\ncontent-length:");
    if (!cl) return 1;
    char *e;
    unsigned long long want = strtoull(cl + 16, &e, 10);
    return want <= len - head;
}

static char answer[1 << 16];

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    if (!srv || size > (1 << 16)) return 0;
    size_t got;
    int whole = complete(data, size);
    /* an incomplete request: a moment for an error answer, then on (the
     * /healthz below still has to answer) */
    long n = exchange(data, size, answer, sizeof answer, whole ? 5.0 : 0.05, &got);
    if (n < 0 && !whole) n = (long)got;
    if (n < 0) {
        fprintf(stderr, "fuzz_http: no end of answer within 5 s; %zu bytes came:\n%.2000s\n", got,
                answer);
        abort();
    }
    /* every status line the answer holds (pipelined requests get several) */
    for (const char *p = answer; (p = strstr(p, "HTTP/1.")) != NULL; p += 7) {
        if (p != answer && p[-1] != '\n') continue;
        int code = 0;
        if (sscanf(p, "HTTP/1.%*d %d", &code) == 1 && code >= 500 && code != 503 && code != 501 &&
            code != 505) {
            fprintf(stderr, "fuzz_http: status %d:\n%.*s\n", code, 2000, p);
            abort();
        }
    }
    static const char hz[] = "GET /healthz HTTP/1.1\r\nHost: x\r\nConnection: close\r\n\r\n";
    char ok[4096];
    if (exchange((const uint8_t *)hz, sizeof hz - 1, ok, sizeof ok, 5.0, &got) < 0 ||
        strncmp(ok, "HTTP/1.1 200", 12) != 0) {
        fprintf(stderr, "fuzz_http: /healthz after the input: %.200s\n", ok);
        abort();
    }
    return 0;
}
