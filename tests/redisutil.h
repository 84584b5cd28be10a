/*
 * redisutil.h: a throwaway redis-server for the store and event tests
 * (header-only: static helpers included by test_store.c and test_events.c).
 *
 * The server listens on 127.0.0.1 on a free port, persists nothing
 * (--save '' --appendonly no), runs in the test's temporary directory, and
 * dies with the test process even when the test crashes (PR_SET_PDEATHSIG);
 * tu_redis_stop ends it normally. When redis-server is not installed the
 * tests that need it skip with a message.
 */
#ifndef BR_REDISUTIL_H
#define BR_REDISUTIL_H

#include <arpa/inet.h>
#include <errno.h>
#include <hiredis/hiredis.h>
#include <netinet/in.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/prctl.h>
#include <sys/socket.h>
#include <sys/wait.h>
#include <time.h>
#include <unistd.h>

typedef struct tu_redis {
    pid_t pid;
    int port;
    char dir[1024];
} tu_redis;

/* The path of redis-server on PATH, or NULL. */
static inline const char *tu_redis_binary(void)
{
    static char found[1024];
    const char *path = getenv("PATH");
    if (!path) path = "/usr/bin:/bin";
    char buf[4096];
    snprintf(buf, sizeof buf, "%s", path);
    char *save = NULL;
    for (char *d = strtok_r(buf, ":", &save); d; d = strtok_r(NULL, ":", &save)) {
        snprintf(found, sizeof found, "%s/redis-server", d);
        if (access(found, X_OK) == 0) return found;
    }
    return NULL;
}

/* A port nothing listens on right now (the kernel's choice). */
static inline int tu_free_port(void)
{
    int fd = socket(AF_INET, SOCK_STREAM, 0);
    struct sockaddr_in a = {.sin_family = AF_INET, .sin_port = 0};
    a.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
    socklen_t len = sizeof a;
    int port = -1;
    if (fd >= 0 && bind(fd, (struct sockaddr *)&a, sizeof a) == 0 &&
        getsockname(fd, (struct sockaddr *)&a, &len) == 0)
        port = ntohs(a.sin_port);
    if (fd >= 0) close(fd);
    return port;
}

static inline void tu_sleep_ms(int ms)
{
    struct timespec ts = {ms / 1000, (long)(ms % 1000) * 1000000L};
    nanosleep(&ts, NULL);
}

/* Sends one command to 127.0.0.1:port; returns 0 when it got a non-error
 * reply. */
static inline int tu_redis_cmd(int port, const char *cmd)
{
    struct timeval tv = {0, 300000};
    redisContext *c = redisConnectWithTimeout("127.0.0.1", port, tv);
    if (!c || c->err) {
        if (c) redisFree(c);
        return -1;
    }
    redisSetTimeout(c, tv);
    redisReply *r = redisCommand(c, cmd);
    int ok = r && r->type != REDIS_REPLY_ERROR;
    if (r) freeReplyObject(r);
    redisFree(c);
    return ok ? 0 : -1;
}

/* Starts a server on r->port (0: a free one, chosen here). 0 on success. */
static inline int tu_redis_start(tu_redis *r, const char *dir)
{
    const char *bin = tu_redis_binary();
    if (!bin) return -1;
    snprintf(r->dir, sizeof r->dir, "%s", dir);
    for (int attempt = 0; attempt < 3; attempt++) {
        int port = r->port ? r->port : tu_free_port();
        char ports[16], log[1100];
        snprintf(ports, sizeof ports, "%d", port);
        snprintf(log, sizeof log, "%s/redis-%d.log", dir, port);
        pid_t parent = getpid();
        pid_t pid = fork();
        if (pid < 0) return -1;
        if (pid == 0) {
            prctl(PR_SET_PDEATHSIG, SIGKILL);
            if (getppid() != parent) _exit(1);
            execl(bin, bin, "--port", ports, "--bind", "127.0.0.1", "--save", "",
                  "--appendonly", "no", "--dir", dir, "--logfile", log, "--daemonize", "no",
                  (char *)NULL);
            _exit(127);
        }
        for (int i = 0; i < 200; i++) { /* up to 10 s */
            int status;
            if (waitpid(pid, &status, WNOHANG) == pid) {
                pid = -1; /* exited: the port was taken meanwhile; try another */
                break;
            }
            if (tu_redis_cmd(port, "PING") == 0) {
                r->pid = pid;
                r->port = port;
                return 0;
            }
            tu_sleep_ms(50);
        }
        if (pid > 0) {
            kill(pid, SIGKILL);
            waitpid(pid, NULL, 0);
        }
        if (r->port) tu_sleep_ms(200); /* a fixed port: give the old socket time */
    }
    return -1;
}

/* Stops the server (SIGTERM, then SIGKILL after 5 s). Keeps r->port, so a
 * later tu_redis_start restarts on the same port. */
static inline void tu_redis_stop(tu_redis *r)
{
    if (r->pid <= 0) return;
    kill(r->pid, SIGCONT); /* in case a test paused it */
    kill(r->pid, SIGTERM);
    for (int i = 0; i < 100; i++) {
        if (waitpid(r->pid, NULL, WNOHANG) == r->pid) {
            r->pid = 0;
            return;
        }
        tu_sleep_ms(50);
    }
    kill(r->pid, SIGKILL);
    waitpid(r->pid, NULL, 0);
    r->pid = 0;
}

/* Kills the server at once, as a crash would. */
static inline void tu_redis_kill(tu_redis *r)
{
    if (r->pid <= 0) return;
    kill(r->pid, SIGKILL);
    waitpid(r->pid, NULL, 0);
    r->pid = 0;
}

#endif
