/*
 * fuzz_events.c: libFuzzer target for `bookrec ingest`'s input files
 * (br_events_read_file): the first byte chooses JSON lines (odd) or CSV
 * (even), the rest is the file. Every event delivered must pass
 * br_event_check, as the reader promises.
 */
#include "fuzz_util.h"

int LLVMFuzzerInitialize(int *argc, char ***argv)
{
    (void)argc, (void)argv;
    return 0;
}

static br_status each(const br_event *e, const char *pos, void *user)
{
    (void)pos;
    if (br_event_check(e, NULL) != BR_OK) abort();
    ++*(size_t *)user;
    return BR_OK;
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    if (size < 1) return 0;
    char p[PATH_MAX];
    fz_path(p, sizeof p, data[0] & 1 ? "in.jsonl" : "in.csv");
    fz_write(p, data + 1, size - 1);
    size_t n = 0;
    (void)br_events_read_file(p, each, &n);
    return 0;
}
