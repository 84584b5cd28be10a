/*
 * csvread.c: see csvread.h. The file is mapped and fed to libcsv one physical
 * line at a time: libcsv keeps its state across calls (a quoted field may
 * span lines), and we always know which line a record started on.
 */
#include "data/csvread.h"

#include <csv.h>
#include <errno.h>
#include <fcntl.h>
#include <string.h>
#include <sys/mman.h>
#include <sys/stat.h>
#include <unistd.h>
#include <utf8proc.h>

#include "core/sbuf.h"

typedef struct reader {
    const char *path;
    br_csv_row row;
    br__sbuf fields; /* the current record's fields, back to back (br__sb_push) */
    size_t offset[BR_CSV_MAX_FIELDS];
    size_t line;          /* physical line being fed */
    size_t record_line;   /* line the current record started on */
    br_csv_row_fn fn;
    void *user;
    br_status status;     /* first failure, stops the read */
} reader;

/* RFC 4180: spaces belong to the field; libcsv trims them by default. */
static int no_space(unsigned char c)
{
    (void)c;
    return 0;
}

static void on_field(void *data, size_t len, void *user)
{
    reader *r = user;
    if (r->status != BR_OK) return;
    if (r->row.n >= BR_CSV_MAX_FIELDS) {
        r->status = br_error(BR_EPARSE, "%s:%zu: more than %d fields in a record", r->path,
                             r->record_line, BR_CSV_MAX_FIELDS);
        return;
    }
    /* Validate UTF-8 with utf8proc: an invalid byte sequence is an error. */
    const utf8proc_uint8_t *s = data;
    utf8proc_ssize_t pos = 0;
    /* ASCII needs no decoding; a NUL byte is refused (every later use of
     * the field is a C string: it would be cut there, as train's copy of
     * books.csv once was) */
    for (; pos < (utf8proc_ssize_t)len && s[pos] < 0x80; pos++)
        if (!s[pos]) {
            r->status = br_error(BR_EPARSE, "%s:%zu: field %d holds a NUL byte", r->path,
                                 r->record_line, r->row.n + 1);
            return;
        }
    while (pos < (utf8proc_ssize_t)len) {
        utf8proc_int32_t cp;
        utf8proc_ssize_t k = utf8proc_iterate(s + pos, (utf8proc_ssize_t)len - pos, &cp);
        if (k < 0) {
            r->status = br_error(BR_EPARSE, "%s:%zu: field %d is not valid UTF-8 (byte 0x%02x)",
                                 r->path, r->record_line, r->row.n + 1, s[pos]);
            return;
        }
        pos += k;
    }
    if (br__sb_push(&r->fields, data ? data : "", len, &r->offset[r->row.n])) {
        r->status = br_error(BR_ENOMEM, "%s:%zu: out of memory", r->path, r->record_line);
        return;
    }
    r->row.len[r->row.n] = len;
    r->row.n++;
}

static void on_record(int term, void *user)
{
    reader *r = user;
    (void)term;
    if (r->status == BR_OK) {
        for (int i = 0; i < r->row.n; i++) r->row.field[i] = r->fields.p + r->offset[i];
        r->row.line = r->record_line;
        r->status = r->fn(&r->row, r->user);
    }
    r->row.n = 0;
    br__sb_reset(&r->fields);
}

int br__csv_column(const br_csv_row *header, const char *name)
{
    for (int i = 0; i < header->n; i++)
        if (strcmp(header->field[i], name) == 0) return i;
    return -1;
}

br_status br__csv_read(const char *path, br_csv_row_fn fn, void *user, const char *progress_stage)
{
    int fd = open(path, O_RDONLY | O_CLOEXEC);
    if (fd < 0) return br_error(BR_EIO, "%s: cannot open: %s", path, strerror(errno));
    struct stat st;
    if (fstat(fd, &st) != 0 || !S_ISREG(st.st_mode)) {
        close(fd);
        return br_error(BR_EIO, "%s: not a regular file", path);
    }
    size_t size = (size_t)st.st_size;
    if (size == 0) {
        close(fd);
        return br_error(BR_EPARSE, "%s: file is empty", path);
    }
    const char *buf = mmap(NULL, size, PROT_READ, MAP_PRIVATE, fd, 0);
    close(fd);
    if (buf == MAP_FAILED) return br_error(BR_EIO, "%s: cannot map: %s", path, strerror(errno));
    madvise((void *)buf, size, MADV_SEQUENTIAL);

    reader r = {.path = path, .fn = fn, .user = user, .status = BR_OK};
    struct csv_parser p;
    if (csv_init(&p, CSV_STRICT | CSV_STRICT_FINI | CSV_APPEND_NULL) != 0) {
        munmap((void *)buf, size);
        return br_error(BR_ENOMEM, "%s: cannot initialise the CSV parser", path);
    }
    csv_set_space_func(&p, no_space);

    br_progress prog;
    if (progress_stage) br_progress_begin(&prog, progress_stage, size);

    size_t pos = 0;
    if (size >= 3 && memcmp(buf, "\xEF\xBB\xBF", 3) == 0) pos = 3; /* UTF-8 byte order mark */
    for (r.line = 1; pos < size && r.status == BR_OK; r.line++) {
        const char *nl = memchr(buf + pos, '\n', size - pos);
        size_t end = nl ? (size_t)(nl - buf) + 1 : size;
        if (p.pstate == 0) r.record_line = r.line; /* no record in progress */
        if (csv_parse(&p, buf + pos, end - pos, on_field, on_record, &r) != end - pos &&
            r.status == BR_OK) {
            r.status = csv_error(&p) == CSV_EPARSE
                           ? br_error(BR_EPARSE,
                                      "%s:%zu: malformed quoting (a quote inside an unquoted "
                                      "field, or text after a closing quote)",
                                      path, r.line)
                           : br_error(BR_ENOMEM, "%s:%zu: %s", path, r.line,
                                      csv_strerror(csv_error(&p)));
        }
        pos = end;
        if (progress_stage && r.status == BR_OK && (r.line & 1023) == 0) {
            br_status ps = br_progress_update(&prog, pos);
            if (ps != BR_OK) r.status = ps;
        }
    }
    if (r.status == BR_OK) {
        size_t last = r.line > 1 ? r.line - 1 : 1;
        if (csv_fini(&p, on_field, on_record, &r) != 0 && r.status == BR_OK)
            r.status = br_error(BR_EPARSE, "%s:%zu: quoted field not closed before end of file",
                                path, r.record_line ? r.record_line : last);
    }
    csv_free(&p);
    br__sb_free(&r.fields);
    munmap((void *)buf, size);
    if (progress_stage && r.status == BR_OK) r.status = br_progress_end(&prog);
    return r.status;
}
