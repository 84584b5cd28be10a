/*
 * fuzz_eventlog.c: libFuzzer target for the binary event log's reader
 * (src/store/events_file.c): the input is the whole log file. Opened read
 * only, read by a consumer group and counted; then opened for writing
 * (which cuts a torn tail), read again and appended to. Every event
 * delivered must pass br_event_validate; the count must match what a
 * read delivers; the appended event must come back.
 */
#include "fuzz_util.h"

static char uri[PATH_MAX + 8];
static const char *log_path;

int LLVMFuzzerInitialize(int *argc, char ***argv)
{
    (void)argc, (void)argv;
    static char p[PATH_MAX];
    log_path = fz_path(p, sizeof p, "events.log");
    snprintf(uri, sizeof uri, "file:%s", log_path);
    const char *dump = getenv("FUZZ_DUMP_SEEDS");
    if (dump) { /* a valid log of three events, for fuzz/seeds/eventlog */
        br_events *ev;
        char sp[PATH_MAX + 8];
        snprintf(sp, sizeof sp, "file:%s/three", dump);
        br_event e[3] = {{"u1", "b7", BR_EVENT_RATING, 4, 1718000000},
                         {"u2", "b7", BR_EVENT_CLICK, 1, 1718000001},
                         {"reader-3", "978-0-00", BR_EVENT_PURCHASE, 2.5f, 0}};
        if (br_events_open(sp, 0, &ev) != BR_OK || br_events_append(ev, e, 3) != BR_OK) abort();
        br_events_close(ev);
    }
    return 0;
}

static br_status each(const br_event *e, const char *pos, void *user)
{
    (void)pos;
    if (br_event_validate(e) != BR_OK) abort();
    return BR_OK;
}

static size_t read_all(br_events *ev)
{
    size_t n = 0;
    char last[BR_EVENTS_POS_MAX];
    if (br_events_read(ev, "fuzz", 0, each, NULL, &n, last) != BR_OK) return SIZE_MAX;
    return n;
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    fz_write(log_path, data, size);
    br_events *ev;
    uint64_t count;
    if (br_events_open(uri, BR_EVENTS_RDONLY, &ev) == BR_OK) {
        size_t n = read_all(ev);
        if (br_events_count(ev, &count) == BR_OK && n != SIZE_MAX && n > count) abort();
        br_events_close(ev);
    }
    if (br_events_open(uri, 0, &ev) == BR_OK) {
        size_t n = read_all(ev);
        if (br_events_count(ev, &count) != BR_OK || n != count) abort();
        br_event e = {"fuzz-user", "fuzz-book", BR_EVENT_VIEW, 1, 1};
        if (br_events_append(ev, &e, 1) != BR_OK) abort();
        if (read_all(ev) != n + 1) abort();
        br_events_close(ev);
    }
    return 0;
}
