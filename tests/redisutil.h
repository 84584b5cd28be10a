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

/* A connection to 127.0.0.1:port with `ms` connect and reply timeouts, or
 * NULL. */
static inline redisContext *tu_redis_connect(int port, int ms)
{
    struct timeval tv = {ms / 1000, (ms % 1000) * 1000};
    redisContext *c = redisConnectWithTimeout("127.0.0.1", port, tv);
    if (!c || c->err) {
        if (c) redisFree(c);
        return NULL;
    }
    redisSetTimeout(c, tv);
    return c;
}

/* Sends one command to 127.0.0.1:port; returns 0 when it got a non-error
 * reply. */
static inline int tu_redis_cmd(int port, const char *cmd)
{
    redisContext *c = tu_redis_connect(port, 300);
    if (!c) return -1;
    redisReply *r = redisCommand(c, cmd);
    int ok = r && r->type != REDIS_REPLY_ERROR;
    if (r) freeReplyObject(r);
    redisFree(c);
    return ok ? 0 : -1;
}

/* Starts a server on r->port (0: a free one, chosen here), with the extra
 * arguments `extra` (NULL-terminated; may be NULL). 0 on success. */
static inline int tu_redis_start_args(tu_redis *r, const char *dir, const char *const *extra)
{
    const char *bin = tu_redis_binary();
    if (!bin) return -1;
    snprintf(r->dir, sizeof r->dir, "%s", dir);
    for (int attempt = 0; attempt < 3; attempt++) {
        int port = r->port ? r->port : tu_free_port();
        char ports[16], log[1100];
        snprintf(ports, sizeof ports, "%d", port);
        snprintf(log, sizeof log, "%s/redis-%d.log", dir, port);
        const char *argv[48] = {bin,      "--port", ports, "--bind",  "127.0.0.1",
                                "--save", "",       "--appendonly", "no", "--dir",
                                dir,      "--logfile", log, "--daemonize", "no"};
        int argc = 15;
        for (int i = 0; extra && extra[i] && argc < 47; i++) argv[argc++] = extra[i];
        argv[argc] = NULL;
        pid_t parent = getpid();
        pid_t pid = fork();
        if (pid < 0) return -1;
        if (pid == 0) {
            prctl(PR_SET_PDEATHSIG, SIGKILL);
            if (getppid() != parent) _exit(1);
            execv(bin, (char *const *)argv);
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

static inline int tu_redis_start(tu_redis *r, const char *dir)
{
    return tu_redis_start_args(r, dir, NULL);
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

/* ------------------------------------------------------------ cluster -- */

/* A Redis Cluster on loopback: `primaries` primaries with `replicas` each
 * (3 and 1 give the 6 nodes of the store tests), created with
 * `redis-cli --cluster create`, a node timeout of 1 s (a killed primary's
 * replica takes over in about 2 s), full coverage not required (a failing
 * node's slots are unavailable, the others keep serving) and replicas
 * synced at once (no repl-diskless-sync-delay). */
#define TU_CLUSTER_MAX 12
typedef struct tu_rcluster {
    tu_redis node[TU_CLUSTER_MAX];
    int n;
    char dir[4096];
    char uri[600]; /* redis-cluster://127.0.0.1:P1,127.0.0.1:P2 */
} tu_rcluster;

/* The path of redis-cli beside redis-server, or NULL. */
static inline const char *tu_redis_cli(void)
{
    static char cli[1100];
    const char *srv = tu_redis_binary();
    if (!srv) return NULL;
    snprintf(cli, sizeof cli, "%s", srv);
    char *slash = strrchr(cli, '/');
    if (!slash) return NULL;
    strcpy(slash + 1, "redis-cli");
    return access(cli, X_OK) == 0 ? cli : NULL;
}

/* Reads `CLUSTER INFO` of 127.0.0.1:port: 1 when cluster_state is ok and
 * every slot is assigned and ok. */
static inline int tu_rcluster_node_ok(int port)
{
    redisContext *c = tu_redis_connect(port, 300);
    if (!c) return 0;
    redisReply *r = redisCommand(c, "CLUSTER INFO");
    int ok = r && r->type == REDIS_REPLY_STRING && strstr(r->str, "cluster_state:ok") &&
             strstr(r->str, "cluster_slots_ok:16384");
    if (r) freeReplyObject(r);
    /* a replica's link to its primary up (else a WAIT finds no replica) */
    r = ok ? redisCommand(c, "INFO replication") : NULL;
    if (r && (r->type != REDIS_REPLY_STRING || strstr(r->str, "master_link_status:down"))) ok = 0;
    if (r) freeReplyObject(r);
    redisFree(c);
    return ok;
}

/* Waits up to ms for every running node to report the cluster ok. */
static inline int tu_rcluster_wait_ok(const tu_rcluster *c, int ms)
{
    for (int waited = 0; waited <= ms; waited += 100) {
        int ok = 1;
        for (int i = 0; i < c->n && ok; i++)
            if (c->node[i].pid > 0) ok = tu_rcluster_node_ok(c->node[i].port);
        if (ok) return 0;
        tu_sleep_ms(100);
    }
    return -1;
}

/* The node's arguments. Its cluster bus gets its own free port: the
 * default, port + 10000, does not exist above 55535. */
static inline const char *const *tu_rcluster_args(int port, const char *dir)
{
    static char conf[4200], bus[16];
    static const char *args[20];
    snprintf(conf, sizeof conf, "%s/nodes-%d.conf", dir, port);
    snprintf(bus, sizeof bus, "%d", tu_free_port());
    int k = 0;
    args[k++] = "--cluster-port";
    args[k++] = bus;
    args[k++] = "--cluster-enabled";
    args[k++] = "yes";
    args[k++] = "--cluster-config-file";
    args[k++] = conf;
    args[k++] = "--cluster-node-timeout";
    args[k++] = "1000";
    args[k++] = "--cluster-require-full-coverage";
    args[k++] = "no";
    args[k++] = "--cluster-replica-validity-factor";
    args[k++] = "0";
    args[k++] = "--repl-diskless-sync-delay";
    args[k++] = "0";
    args[k] = NULL;
    return args;
}

/* Stops every node. */
static inline void tu_rcluster_stop(tu_rcluster *c)
{
    for (int i = 0; i < c->n; i++) tu_redis_stop(&c->node[i]);
}

/* Starts the nodes on free ports and creates the cluster. 0 on success. */
static inline int tu_rcluster_start(tu_rcluster *c, const char *dir, int primaries, int replicas)
{
    const char *cli = tu_redis_cli();
    memset(c, 0, sizeof *c);
    c->n = primaries * (1 + replicas);
    if (!cli || c->n > TU_CLUSTER_MAX || primaries < 3) return -1;
    snprintf(c->dir, sizeof c->dir, "%s", dir);
    for (int i = 0; i < c->n; i++) {
        int port = tu_free_port();
        c->node[i].port = port;
        if (tu_redis_start_args(&c->node[i], dir, tu_rcluster_args(port, dir)) != 0) {
            tu_rcluster_stop(c);
            return -1;
        }
    }
    char reps[16];
    snprintf(reps, sizeof reps, "%d", replicas);
    const char *argv[TU_CLUSTER_MAX + 8];
    char addr[TU_CLUSTER_MAX][32];
    int argc = 0;
    argv[argc++] = cli;
    argv[argc++] = "--cluster";
    argv[argc++] = "create";
    for (int i = 0; i < c->n; i++) {
        snprintf(addr[i], sizeof addr[i], "127.0.0.1:%d", c->node[i].port);
        argv[argc++] = addr[i];
    }
    argv[argc++] = "--cluster-replicas";
    argv[argc++] = reps;
    argv[argc++] = "--cluster-yes";
    argv[argc] = NULL;
    char log[4200];
    snprintf(log, sizeof log, "%s/cluster-create.log", dir);
    pid_t pid = fork();
    if (pid < 0) {
        tu_rcluster_stop(c);
        return -1;
    }
    if (pid == 0) {
        FILE *f = freopen(log, "w", stdout);
        (void)f;
        dup2(1, 2);
        execv(cli, (char *const *)argv);
        _exit(127);
    }
    int status = 0;
    waitpid(pid, &status, 0);
    if (!WIFEXITED(status) || WEXITSTATUS(status) != 0 || tu_rcluster_wait_ok(c, 20000) != 0) {
        tu_rcluster_stop(c);
        return -1;
    }
    int len = snprintf(c->uri, sizeof c->uri, "redis-cluster://");
    for (int i = 0; i < 2; i++)
        len += snprintf(c->uri + len, sizeof c->uri - (size_t)len, "%s127.0.0.1:%d", i ? "," : "",
                        c->node[i].port);
    return 0;
}

/* A reply to `cmd` from 127.0.0.1:port (NULL when unreachable); free it
 * with freeReplyObject. */
static inline redisReply *tu_redis_query(int port, const char *cmd)
{
    redisContext *x = tu_redis_connect(port, 2000);
    if (!x) return NULL;
    redisReply *r = redisCommand(x, cmd);
    redisFree(x);
    return r;
}

/* The index in c->node of the primary serving `key`'s slot, asked of the
 * running nodes (-1: none knows). */
static inline int tu_rcluster_owner(const tu_rcluster *c, const char *key)
{
    for (int i = 0; i < c->n; i++) {
        if (c->node[i].pid <= 0) continue;
        redisContext *x = tu_redis_connect(c->node[i].port, 2000);
        if (!x) continue;
        redisReply *ks = redisCommand(x, "CLUSTER KEYSLOT %s", key);
        redisReply *sl = redisCommand(x, "CLUSTER SLOTS");
        int owner = -1;
        if (ks && ks->type == REDIS_REPLY_INTEGER && sl && sl->type == REDIS_REPLY_ARRAY)
            for (size_t k = 0; k < sl->elements && owner < 0; k++) {
                redisReply *e = sl->element[k];
                if (ks->integer < e->element[0]->integer || ks->integer > e->element[1]->integer)
                    continue;
                long long port = e->element[2]->element[1]->integer;
                for (int j = 0; j < c->n; j++)
                    if (c->node[j].port == port) owner = j;
            }
        if (ks) freeReplyObject(ks);
        if (sl) freeReplyObject(sl);
        redisFree(x);
        if (owner >= 0) return owner;
    }
    return -1;
}

/* Restarts node i on its port (it rejoins with its nodes.conf: a primary
 * that was failed over comes back as a replica). 0 on success. */
static inline int tu_rcluster_restart(tu_rcluster *c, int i)
{
    return tu_redis_start_args(&c->node[i], c->dir, tu_rcluster_args(c->node[i].port, c->dir));
}

/* Sends `cmd` to every running primary (FLUSHALL between tests). */
static inline int tu_rcluster_each_primary(const tu_rcluster *c, const char *cmd)
{
    int rc = 0;
    for (int i = 0; i < c->n; i++) {
        if (c->node[i].pid <= 0) continue;
        redisContext *x = tu_redis_connect(c->node[i].port, 2000);
        if (!x) {
            rc = -1;
            continue;
        }
        redisReply *r = redisCommand(x, "ROLE");
        int primary = r && r->type == REDIS_REPLY_ARRAY && r->elements > 0 &&
                      r->element[0]->type == REDIS_REPLY_STRING &&
                      !strcmp(r->element[0]->str, "master");
        if (r) freeReplyObject(r);
        if (primary) {
            r = redisCommand(x, cmd);
            if (!r || r->type == REDIS_REPLY_ERROR) rc = -1;
            if (r) freeReplyObject(r);
        }
        redisFree(x);
    }
    return rc;
}

#endif
