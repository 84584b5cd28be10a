/*
 * cmd_serve.c: `bookrec serve`, the HTTP API over a published model
 * (bookrec/serve.h, docs/api.md). Runs until SIGINT or SIGTERM; SIGHUP
 * reloads the model directory's current version.
 */
#include <getopt.h>
#include <pthread.h>
#include <signal.h>
#include <sys/resource.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <unistd.h>

#include "cli.h"

static void usage(FILE *out)
{
    fprintf(
        out,
        "usage: bookrec serve --model-dir DIR [--store URI] [--bind ADDR] [--port N]\n"
        "                     [--threads N] [--api-key KEY] [--max-body BYTES] [--max-added N]\n"
        "                     [--poll-ms MS] [--w-content W] [--w-pop W] [--w-recent W]\n"
        "                     [--recent-years N] [--cors ORIGIN] [--max-per-ip N]\n"
        "                     [--request-deadline SECONDS] [--max-connections N]\n"
        "                     [--allow-open-writes]\n\n"
        "Serves the model version DIR/current points to over HTTP (docs/api.md):\n"
        "recommendations re-ranked per request, book details and neighbours, events,\n"
        "anonymous sessions, new books, /healthz, /readyz, /metrics and the web page.\n"
        "A new version published by `bookrec train` is picked up by itself (DIR/current\n"
        "is polled); SIGHUP reloads at once.\n\n"
        "  --model-dir DIR     the model directory `bookrec train` writes\n"
        "  --store URI         lmdb:DIR, redis://HOST:PORT[/DB] or\n"
        "                      redis-cluster://HOST:PORT[,HOST:PORT...] (default: the\n"
        "                      one the current version's manifest names)\n"
        "  --bind ADDR         address or host name to listen on, IPv4 or IPv6\n"
        "                      (default 127.0.0.1; e.g. localhost, ::1, 0.0.0.0)\n"
        "  --port N            TCP port (default 8080; 0: a free one, printed)\n"
        "  --threads N         HTTP worker threads (default 2; 8 with a Redis store,\n"
        "                      whose reads hold a thread for a round trip)\n"
        "  --api-key KEY       X-API-Key the write endpoints require (default: none;\n"
        "                      also $BOOKREC_API_KEY). Without one, on a bind beyond\n"
        "                      loopback the write endpoints answer 401\n"
        "  --allow-open-writes let anyone post events and books on a bind beyond\n"
        "                      loopback without --api-key\n"
        "  --max-body BYTES    largest request body (default 65536)\n"
        "  --max-added N       books POST /api/books may add to a version (default\n"
        "                      10000; then 429 until a train folds them in)\n"
        "  --poll-ms MS        how often DIR/current and a down store are checked (1000)\n"
        "  --w-content W, --w-pop W, --w-recent W, --recent-years N\n"
        "                      the re-ranking of the published lists by what is new\n"
        "                      since the version (docs/api.md, \"Re-ranking\"):\n"
        "                      default what the version records (train: 0.5, 0.1, 0\n"
        "                      i.e. no recency rule, 5 years). With nothing new, a\n"
        "                      reader's list is the one train published\n"
        "  --cors ORIGIN       let pages of ORIGIN (e.g. https://books.example.org, or\n"
        "                      *) call the API from a browser (default: same origin)\n"
        "  --max-per-ip N      connections one client address may hold open, loopback\n"
        "                      too (default 64; more are closed at once)\n"
        "  --request-deadline SECONDS\n"
        "                      time a connection has to send a whole request, from\n"
        "                      its opening or its previous answer, however slowly\n"
        "                      its bytes come (default 10; then it is closed)\n"
        "  --max-connections N open connections served (default 4000); 64 more are\n"
        "                      kept for /healthz and /readyz (others get 503)\n"
        "The log (stderr) records, time-stamped, each reload, the store going down and\n"
        "recovering, and readiness changes; --quiet keeps only warnings.\n");
}

static void serve_log(br_log_level level, const char *msg, void *user)
{
    (void)user;
    static const char *names[] = {"debug", "info", "warning", "error"};
    char when[32];
    time_t now = time(NULL);
    struct tm tm;
    strftime(when, sizeof when, "%Y-%m-%dT%H:%M:%SZ", gmtime_r(&now, &tm));
    fprintf(stderr, "%s bookrec: %s: %s\n", when, names[level], msg);
}

static int run(int argc, char **argv)
{
    static const struct option longopts[] = {{"model-dir", required_argument, 0, 'd'},
                                             {"store", required_argument, 0, 's'},
                                             {"bind", required_argument, 0, 'b'},
                                             {"port", required_argument, 0, 'p'},
                                             {"threads", required_argument, 0, 't'},
                                             {"api-key", required_argument, 0, 'k'},
                                             {"max-body", required_argument, 0, 'm'},
                                             {"poll-ms", required_argument, 0, 'P'},
                                             {"w-content", required_argument, 0, 2},
                                             {"w-pop", required_argument, 0, 3},
                                             {"w-recent", required_argument, 0, 4},
                                             {"recent-years", required_argument, 0, 5},
                                             {"cors", required_argument, 0, 6},
                                             {"max-added", required_argument, 0, 7},
                                             {"max-per-ip", required_argument, 0, 8},
                                             {"request-deadline", required_argument, 0, 9},
                                             {"max-connections", required_argument, 0, 10},
                                             {"allow-open-writes", no_argument, 0, 11},
                                             {"help", no_argument, 0, 'h'},
                                             {0, 0, 0, 0}};
    br_server_options o = BR_SERVER_OPTIONS_DEFAULT;
    o.api_key = getenv("BOOKREC_API_KEY");
    unsigned long long u;
    double w;
    int c;
    optind = 0;
    while ((c = getopt_long(argc, argv, "h", longopts, NULL)) != -1) {
        switch (c) {
        case 'd':
            o.model_dir = optarg;
            break;
        case 's':
            o.store = optarg;
            break;
        case 'b':
            o.bind = optarg;
            break;
        case 'p':
            if (cli_parse_u64(optarg, &u) || u > 65535)
                return cli_usage_error("serve", "--port needs 0..65535");
            o.port = (uint16_t)u;
            break;
        case 't':
            if (cli_parse_u64(optarg, &u) || u < 1 || u > 256)
                return cli_usage_error("serve", "--threads needs 1..256");
            o.threads = (uint32_t)u;
            break;
        case 'k':
            o.api_key = optarg;
            break;
        case 'm':
            if (cli_parse_u64(optarg, &u) || u < 1 || u > (1ull << 30))
                return cli_usage_error("serve", "--max-body needs 1..1073741824");
            o.max_body = (size_t)u;
            break;
        case 7:
            if (cli_parse_u64(optarg, &u) || u < 1 || u > 100000000)
                return cli_usage_error("serve", "--max-added needs 1..100000000");
            o.max_added = (size_t)u;
            break;
        case 8:
            if (cli_parse_u64(optarg, &u) || u < 1 || u > 1000000)
                return cli_usage_error("serve", "--max-per-ip needs 1..1000000");
            o.max_per_ip = (uint32_t)u;
            break;
        case 9:
            if (cli_parse_double(optarg, &w) || !(w >= 0.1 && w <= 3600))
                return cli_usage_error("serve", "--request-deadline needs 0.1..3600 seconds");
            o.request_deadline_ms = (uint32_t)(w * 1000 + 0.5);
            break;
        case 10:
            if (cli_parse_u64(optarg, &u) || u < 1 || u > 1000000)
                return cli_usage_error("serve", "--max-connections needs 1..1000000");
            o.max_connections = (uint32_t)u;
            break;
        case 11:
            o.allow_open_writes = 1;
            break;
        case 'P':
            if (cli_parse_u64(optarg, &u) || u < 10 || u > 3600000)
                return cli_usage_error("serve", "--poll-ms needs 10..3600000");
            o.poll_ms = (uint32_t)u;
            break;
        case 2:
        case 3:
        case 4:
            if (cli_parse_double(optarg, &w) || !(w >= 0 && w <= 100))
                return cli_usage_error("serve", "weights are numbers in 0..100");
            if (c == 2) o.rank.w_content = (float)w;
            if (c == 3) o.rank.w_pop = (float)w;
            if (c == 4) o.rank.w_recent = (float)w;
            break;
        case 5:
            if (cli_parse_u64(optarg, &u) || u > 1000)
                return cli_usage_error("serve", "--recent-years needs 0..1000");
            o.rank.recent_years = (uint32_t)u;
            break;
        case 6:
            o.cors = optarg;
            break;
        case 'h':
            usage(stdout);
            return CLI_OK;
        default:
            return cli_bad_option("serve", argv, longopts);
        }
    }
    if (optind < argc) return cli_usage_error("serve", "unexpected argument '%s'", argv[optind]);
    if (!o.model_dir) return cli_usage_error("serve", "--model-dir is required");

    /* The signals go to this thread only (sigwait below): block them before
     * the server's threads start so they inherit the mask. */
    sigset_t set;
    sigemptyset(&set);
    sigaddset(&set, SIGINT);
    sigaddset(&set, SIGTERM);
    sigaddset(&set, SIGHUP);
    pthread_sigmask(SIG_BLOCK, &set, NULL);
    signal(SIGPIPE, SIG_IGN);
    /* Each connection is a descriptor: the usual soft limit (1024) would
     * cap the server far below --max-connections. */
    struct rlimit rl;
    if (getrlimit(RLIMIT_NOFILE, &rl) == 0 && rl.rlim_cur < rl.rlim_max) {
        /* no hard limit: the kernel's own (fs.nr_open) is 1048576 by default */
        rl.rlim_cur = rl.rlim_max == RLIM_INFINITY ? 1048576 : rl.rlim_max;
        setrlimit(RLIMIT_NOFILE, &rl);
    }

    /* a server's log is its record: time-stamped, and at INFO (reloads,
     * recoveries) unless --quiet */
    br_log_set(serve_log, NULL,
               cli_verbose >= 2 ? BR_LOG_DEBUG
               : cli_quiet      ? BR_LOG_WARN
                                : BR_LOG_INFO);
    br_server *srv = NULL;
    br_status st = br_server_start(&o, &srv);
    if (st) return cli_fail("serve", st);
    char version[BR_MODEL_ID_MAX];
    br_server_version(srv, version, sizeof version);
    const char *host = o.bind ? o.bind : "127.0.0.1";
    int v6 = strchr(host, ':') && host[0] != '['; /* an IPv6 address goes in brackets */
    printf("bookrec serve: http://%s%s%s:%u/ model %s (pid %ld)\n", v6 ? "[" : "", host,
           v6 ? "]" : "", br_server_port(srv), version, (long)getpid());
    fflush(stdout);
    for (;;) {
        int sig = 0;
        if (sigwait(&set, &sig) != 0) continue;
        if (sig == SIGHUP) {
            st = br_server_reload(srv, 0);
            br_server_version(srv, version, sizeof version);
            if (st)
                fprintf(stderr, "bookrec serve: reload failed, still serving %s: %s\n", version,
                        br_error_detail());
            else
                fprintf(stderr, "bookrec serve: serving %s\n", version);
            continue;
        }
        break;
    }
    br_server_stop(srv);
    br_server_free(srv);
    return CLI_OK;
}

const cli_command cli_cmd_serve = {"serve", "HTTP API over a published model (docs/api.md)", run,
                                   usage};
