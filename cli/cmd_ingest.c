/*
 * cmd_ingest.c: `bookrec ingest`, appends interactions from a CSV or JSON
 * lines file to the event log of a store (the file log beside an LMDB
 * store, or the Redis Stream), for the next `bookrec train` to fold in.
 * The whole file is checked before anything is appended, so a bad line
 * never leaves half a file in the log: every event by br_event_check with
 * the rating scale of the version the store serves, and its book against
 * that version's books (posted ones included). A store that serves no
 * version yet has nothing to check against: the structural checks only,
 * with a warning (train checks the rest when it folds the events in).
 */
#include <getopt.h>
#include <jansson.h>
#include <stdlib.h>
#include <string.h>

#include "cli.h"

#define BATCH 1000

static void usage(FILE *out)
{
    fprintf(out,
            "usage: bookrec ingest --events FILE [--store URI] [--apply] [--json]\n\n"
            "Appends reader interactions to the event log of a store; the next\n"
            "`bookrec train` folds them into the model. The file is checked first\n"
            "against the model version the store serves (ratings within its rating\n"
            "scale, books among its books, weights and timestamps >= 0): one bad\n"
            "line (reported as FILE:LINE) and nothing is appended. A store serving\n"
            "no version yet gets the structural checks only, with a warning.\n\n"
            "  --events FILE   CSV with the header user_id,book_id,type,value,timestamp\n"
            "                  (any order, extra columns ignored), or JSON lines (.jsonl,\n"
            "                  .ndjson) with those keys, e.g.\n"
            "                  {\"user_id\": \"u1\", \"book_id\": \"b7\", \"type\": \"click\",\n"
            "                   \"value\": 1, \"timestamp\": 1718000000}\n"
            "                  type: rating | click | view | purchase; value: a number\n"
            "                  (the rating, or a weight >= 0); timestamp: Unix seconds\n"
            "  --store URI     lmdb:DIR (log in DIR/events.log) or\n"
            "                  redis://HOST:PORT[/DB] (the stream bookrec:events) or\n"
            "                  redis-cluster://HOST:PORT[,...] (partitioned streams);\n"
            "                  default $BOOKREC_STORE, else lmdb:store\n"
            "  --apply         also update the readers' seen sets and latest\n"
            "                  interactions in the store at once, as the server does\n"
            "  --json          print a JSON summary\n");
}

typedef struct batch {
    br_event ev[BATCH];
    char users[BATCH][BR_ID_MAX];
    char books[BATCH][BR_ID_MAX];
    size_t n, total;
    br_events *log;
    br_store *store;
} batch;

/* What the events are checked against: the served version, if any. */
typedef struct checker {
    br_store *store;             /* NULL: no version, books not checked */
    const br_event_rules *rules; /* NULL: no scale known */
    char version[BR_STORE_VERSION_MAX];
    br_idmap *known; /* books the store already confirmed */
    size_t n;
} checker;

static br_status check_one(const br_event *e, const char *pos, void *user)
{
    checker *c = user;
    br_status st = br_event_check(e, c->rules);
    if (st == BR_EINVAL) st = BR_EPARSE; /* bad data in the file, as a malformed line */
    size_t len = strlen(e->book_id);
    if (st == BR_OK && c->store && br_idmap_find(c->known, e->book_id, len) < 0) {
        br_store_book *b = NULL;
        uint32_t idx;
        st = br_store_get_book(c->store, e->book_id, &b);
        br_free(b);
        if (st == BR_ENOTFOUND)
            br_error(st, "book '%s' is not a book of the model version %s the store serves",
                     e->book_id, c->version);
        else if (st == BR_OK) /* looked up once per book */
            st = br_idmap_intern(c->known, e->book_id, len, &idx, NULL);
    }
    if (st != BR_OK) {
        char d[512]; /* copied: br_error writes the buffer the detail is in */
        snprintf(d, sizeof d, "%s", br_error_detail());
        return br_error(st, "%s: %s", pos, d);
    }
    c->n++;
    return BR_OK;
}

/* The rules of the version the store serves into c (none: a warning). */
static br_status served_rules(br_store *s, checker *c, br_event_rules *rules)
{
    br_status st = br_store_version(s, c->version, sizeof c->version);
    if (st == BR_ENOTFOUND) {
        br_error_clear();
        fprintf(stderr, "bookrec ingest: warning: the store serves no model version yet: ratings "
                        "are not checked against a rating scale nor books against a catalogue "
                        "(`bookrec train --events` checks them when it folds them in)\n");
        return BR_OK;
    }
    char *meta = NULL;
    if (!st) st = br_store_get_meta(s, &meta);
    if (!st) st = br_event_rules_from_manifest(meta, rules);
    br_free(meta);
    if (st == BR_ENOTFOUND) {
        fprintf(stderr,
                "bookrec ingest: warning: version %s of the store records no rating "
                "scale: ratings are not checked against one\n",
                c->version);
        br_error_clear();
        st = BR_OK;
    } else if (!st) {
        c->rules = rules;
    }
    c->store = s;
    return st;
}

static br_status flush(batch *b)
{
    if (b->n == 0) return BR_OK;
    br_status st = br_events_append(b->log, b->ev, b->n);
    if (st == BR_OK && b->store) st = br_store_apply_events(b->store, b->ev, b->n);
    if (st == BR_OK) b->total += b->n;
    b->n = 0;
    return st;
}

static br_status add(const br_event *e, const char *pos, void *user)
{
    (void)pos;
    batch *b = user;
    size_t i = b->n;
    snprintf(b->users[i], BR_ID_MAX, "%s", e->user_id);
    snprintf(b->books[i], BR_ID_MAX, "%s", e->book_id);
    b->ev[i] = *e;
    b->ev[i].user_id = b->users[i];
    b->ev[i].book_id = b->books[i];
    b->n++;
    return b->n == BATCH ? flush(b) : BR_OK;
}

static int run(int argc, char **argv)
{
    static const struct option longopts[] = {{"events", required_argument, 0, 'e'},
                                              {"store", required_argument, 0, 's'},
                                              {"apply", no_argument, 0, 'a'},
                                              {"json", no_argument, 0, 'j'},
                                              {"help", no_argument, 0, 'h'},
                                              {0, 0, 0, 0}};
    const char *events = NULL, *uri = getenv("BOOKREC_STORE");
    int apply = 0, json = 0, c;
    optind = 0;
    while ((c = getopt_long(argc, argv, "h", longopts, NULL)) != -1) {
        switch (c) {
        case 'e': events = optarg; break;
        case 's': uri = optarg; break;
        case 'a': apply = 1; break;
        case 'j': json = 1; break;
        case 'h': usage(stdout); return CLI_OK;
        default: return cli_bad_option("ingest", argv, longopts);
        }
    }
    if (optind < argc) return cli_usage_error("ingest", "unexpected argument '%s'", argv[optind]);
    if (!events) return cli_usage_error("ingest", "--events FILE is required");
    if (!uri || !*uri) uri = "lmdb:store";

    uint64_t t0 = br_now_ns();
    br_store *s = NULL;
    br_event_rules rules;
    checker ck = {0};
    br_status st = br_store_open(uri, 0, &s);
    if (st == BR_OK) st = br_idmap_create(&ck.known);
    if (st == BR_OK) st = served_rules(s, &ck, &rules);
    /* check everything first */
    if (st == BR_OK) st = br_events_read_file(events, check_one, &ck);
    br_idmap_free(ck.known);
    size_t n = ck.n;
    if (st != BR_OK) {
        br_store_close(s);
        return cli_fail("ingest", st);
    }

    batch *b = calloc(1, sizeof *b);
    if (!b) {
        br_store_close(s);
        return cli_fail("ingest", br_error(BR_ENOMEM, "batch"));
    }
    if (apply) b->store = s;
    st = br_events_open(uri, 0, &b->log);
    if (st == BR_OK) st = br_events_read_file(events, add, b);
    if (st == BR_OK) st = flush(b);
    int rc = CLI_OK;
    double secs = (double)(br_now_ns() - t0) / 1e9;
    if (st != BR_OK) {
        rc = cli_fail("ingest", st);
        if (b->total)
            fprintf(stderr, "bookrec ingest: %zu of %zu events were appended before the error\n",
                    b->total, n);
    } else if (json) {
        cli_print_json(json_pack("{s:s, s:s, s:I, s:b, s:f}", "events_file", events, "store", uri,
                                 "appended", (json_int_t)b->total, "applied", apply, "seconds",
                                 secs));
    } else {
        printf("appended %zu events from %s to the event log of %s%s in %.3f s\n", b->total,
               events, uri, apply ? " (and applied them to the store)" : "", secs);
    }
    br_events_close(b->log);
    br_store_close(s);
    free(b);
    return rc;
}

const cli_command cli_cmd_ingest = {"ingest", "append interactions to a store's event log", run,
                                    usage};
