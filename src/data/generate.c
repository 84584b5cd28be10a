/*
 * generate.c: the seed universe, built by the seed notebook's recipe: seven
 * genres, titles from adjective + noun + volume, one description template
 * per genre, each reader rating 20..49 distinct books uniformly 1..5.
 *
 * Two random streams. BR_GEN_NUMPY replays numpy's legacy RandomState
 * (MT19937, masked rejection for integers, a full Fisher-Yates shuffle for
 * each sample without replacement), so seed 42 at 1000 x 100 writes the
 * notebook's own universe byte for byte. BR_GEN_XOSHIRO costs O(ratings)
 * and is the scale-test generator (1,000,000 readers x 100,000 books).
 * Output streams to disk; nothing proportional to the ratings is held.
 */
#include <errno.h>
#include <fcntl.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include "bookrec/data.h"
#include "core/afile.h"

#define N_WORDS 7

static const char *const genres[N_WORDS] = {"Sci-Fi",  "Fantasy",
                                            "Mystery", "Thriller",
                                            "Romance", "Historical Fiction",
                                            "Biography"};
static const char *const adjectives[N_WORDS] = {"Cosmic",  "Forgotten", "Silent", "Whispering",
                                                "Eternal", "Broken",    "Crystal"};
static const char *const nouns[N_WORDS] = {"Odyssey", "Kingdom", "Witness", "Shadow",
                                           "Love",    "Empire",  "Truth"};

const char *br_generate_genre(int index)
{
    return index >= 0 && index < N_WORDS ? genres[index] : NULL;
}

/* ------------------------------------------------ numpy's legacy MT19937 -- */

#define MT_N 624
#define MT_M 397

typedef struct mt19937 {
    uint32_t key[MT_N];
    int pos;
} mt19937;

static void mt_seed(mt19937 *mt, uint32_t seed)
{
    for (int i = 0; i < MT_N; i++) {
        mt->key[i] = seed;
        seed = 1812433253U * (seed ^ (seed >> 30)) + (uint32_t)i + 1;
    }
    mt->pos = MT_N;
}

static void mt_refill(mt19937 *mt)
{
    uint32_t *k = mt->key;
    for (int i = 0; i < MT_N; i++) {
        uint32_t y = (k[i] & 0x80000000U) | (k[(i + 1) % MT_N] & 0x7fffffffU);
        k[i] = k[(i + MT_M) % MT_N] ^ (y >> 1) ^ ((y & 1U) ? 0x9908b0dfU : 0U);
    }
    mt->pos = 0;
}

static uint32_t mt_next(mt19937 *mt)
{
    if (mt->pos == MT_N) mt_refill(mt);
    uint32_t y = mt->key[mt->pos++];
    y ^= y >> 11;
    y ^= (y << 7) & 0x9d2c5680U;
    y ^= (y << 15) & 0xefc60000U;
    y ^= y >> 18;
    return y;
}

/* numpy's random_interval and masked bounded integers: the smallest all-ones
 * mask covering `max`, redraw until the masked value is <= max. */
static uint32_t mt_interval(mt19937 *mt, uint32_t max)
{
    if (max == 0) return 0;
    uint32_t mask = max;
    mask |= mask >> 1;
    mask |= mask >> 2;
    mask |= mask >> 4;
    mask |= mask >> 8;
    mask |= mask >> 16;
    uint32_t v;
    while ((v = mt_next(mt) & mask) > max) {}
    return v;
}

/* ------------------------------------------------------- buffered output -- */

typedef struct out_file {
    br__afile a; /* core/afile.h: written aside, renamed when whole */
    const char *path;
    char buf[1 << 16];
    size_t used;
    uint64_t bytes;
    br_status st;
} out_file;

static void of_flush(out_file *f)
{
    if (f->st == BR_OK && f->used && fwrite(f->buf, 1, f->used, f->a.f) != f->used)
        f->st = br_error(BR_EIO, "%s: write failed: %s", f->path, strerror(errno));
    f->bytes += f->used;
    f->used = 0;
}

static void of_put(out_file *f, const char *s, size_t n)
{
    if (f->used + n > sizeof f->buf) of_flush(f);
    if (n > sizeof f->buf) { /* never with our short fields; kept for safety */
        f->used = 0;
        for (size_t i = 0; i < n; i += sizeof f->buf) {
            size_t k = n - i < sizeof f->buf ? n - i : sizeof f->buf;
            memcpy(f->buf, s + i, k);
            f->used = k;
            of_flush(f);
        }
        return;
    }
    memcpy(f->buf + f->used, s, n);
    f->used += n;
}

static void of_str(out_file *f, const char *s)
{
    of_put(f, s, strlen(s));
}

static void of_u64(out_file *f, uint64_t v)
{
    char tmp[24];
    int n = 0;
    do tmp[sizeof tmp - 1 - n++] = (char)('0' + v % 10);
    while ((v /= 10));
    of_put(f, tmp + sizeof tmp - n, (size_t)n);
}

/* A CSV field, quoted only when it must be (comma, quote, CR or LF), the
 * way pandas and Python's csv module write it. */
static void of_field(out_file *f, const char *s)
{
    if (!s[strcspn(s, ",\"\r\n")]) {
        of_str(f, s);
        return;
    }
    of_put(f, "\"", 1);
    for (const char *p = s; *p; p++) {
        if (*p == '"') of_put(f, "\"", 1);
        of_put(f, p, 1);
    }
    of_put(f, "\"", 1);
}

static br_status of_open(out_file *f, const char *dir, const char *name)
{
    size_t n = strlen(dir) + strlen(name) + 2;
    char *path = br_malloc(n);
    if (!path) return br_error(BR_ENOMEM, "generate: out of memory");
    snprintf(path, n, "%s/%s", dir, name);
    br_status st = br__afile_open(&f->a, path);
    br_free(path);
    f->path = f->a.path;
    f->st = BR_OK;
    return st;
}

/* Flush and commit (core/afile.h); on any failure the temporary file is
 * removed and an existing file at the path is left untouched. */
static br_status of_commit(out_file *f, br_status st)
{
    if (!f->a.f) return st; /* never opened */
    if (st == BR_OK) {
        of_flush(f);
        st = f->st;
    }
    if (st == BR_OK) return br__afile_commit(&f->a);
    br__afile_abort(&f->a);
    return st;
}

/* ----------------------------------------------------------------- books -- */

static void write_description(out_file *f, int genre, uint64_t i, const char *title)
{
    char adj[16], noun[16];
    snprintf(adj, sizeof adj, "%s", adjectives[i % N_WORDS]);
    snprintf(noun, sizeof noun, "%s", nouns[i % N_WORDS]);
    for (char *p = adj; *p; p++) *p = (char)(*p >= 'A' && *p <= 'Z' ? *p + 32 : *p);
    for (char *p = noun; *p; p++) *p = (char)(*p >= 'A' && *p <= 'Z' ? *p + 32 : *p);
    char d[512];
    switch (genre) {
    case 0:
        snprintf(d, sizeof d,
                 "A journey through a %s galaxy, where the crew of Starship Enterprise must "
                 "uncover the %s before it's too late.",
                 adj, noun);
        break;
    case 1:
        snprintf(d, sizeof d,
                 "In a land of myth and magic, a young hero must reclaim the %s from the "
                 "clutches of a dark sorcerer. Dragons, elves, and epic battles await in the "
                 "world of %s.",
                 noun, title);
        break;
    case 2:
        snprintf(d, sizeof d,
                 "Detective Harding is on the case of the %s %s. A classic whodunit with a "
                 "shocking twist that will keep you guessing.",
                 adj, noun);
        break;
    case 3:
        snprintf(d, sizeof d,
                 "A heart-pounding race against time. An agent has 24 hours to stop a global "
                 "conspiracy tied to the %s. The stakes have never been higher.",
                 noun);
        break;
    case 4:
        snprintf(d, sizeof d,
                 "Two souls from different worlds find an %s connection. But can their love "
                 "survive the secrets of the past? A story about passion and the %s.",
                 adj, noun);
        break;
    case 5:
        snprintf(d, sizeof d,
                 "Set against the backdrop of the Roman %s, this novel tells the story of a "
                 "family torn apart by war and ambition. A vivid and epic tale.",
                 noun);
        break;
    default:
        snprintf(d, sizeof d,
                 "The inspiring true story of a person who discovered the %s and changed the "
                 "world. An intimate look at a life of struggle and triumph.",
                 noun);
        break;
    }
    of_field(f, d);
}

/* The notebook draws every title first (adjective, then noun, per book),
 * then every genre; the numpy stream must follow that order, so titles'
 * word indices are kept (two bytes a book) until the genres are drawn. */
static br_status write_books(const br_generate_options *o, const char *dir, mt19937 *mt,
                             br_rng *rng, br_generate_report *rep)
{
    uint64_t n = o->n_books;
    unsigned char *words = br_malloc(n * 3);
    if (!words) return br_error(BR_ENOMEM, "generate: out of memory");
    int numpy = o->rng == BR_GEN_NUMPY;
    for (uint64_t i = 0; i < n; i++) {
        words[3 * i] = (unsigned char)(numpy ? mt_interval(mt, 6) : br_rng_below(rng, 7));
        words[3 * i + 1] = (unsigned char)(numpy ? mt_interval(mt, 6) : br_rng_below(rng, 7));
    }
    for (uint64_t i = 0; i < n; i++)
        words[3 * i + 2] = (unsigned char)(numpy ? mt_interval(mt, 6) : br_rng_below(rng, 7));

    out_file f = {0};
    br_status st = of_open(&f, dir, "books.csv");
    if (st == BR_OK) {
        of_str(&f, "book_id,title,genre,description\n");
        char title[96];
        for (uint64_t i = 0; i < n && f.st == BR_OK; i++) {
            snprintf(title, sizeof title, "%s %s Vol. %u", adjectives[words[3 * i]],
                     nouns[words[3 * i + 1]], (unsigned)(i % 10));
            of_u64(&f, i);
            of_put(&f, ",", 1);
            of_field(&f, title);
            of_put(&f, ",", 1);
            of_field(&f, genres[words[3 * i + 2]]);
            of_put(&f, ",", 1);
            write_description(&f, words[3 * i + 2], i, title);
            of_put(&f, "\n", 1);
        }
        st = f.st;
        rep->books_bytes = f.bytes + f.used;
    }
    br_free(words);
    return of_commit(&f, st);
}

/* --------------------------------------------------------------- ratings -- */

static br_status write_ratings(const br_generate_options *o, const char *dir, mt19937 *mt,
                               br_rng *rng, br_generate_report *rep)
{
    uint64_t nb = o->n_books;
    int numpy = o->rng == BR_GEN_NUMPY;
    uint32_t span = (uint32_t)(o->max_per_user - o->min_per_user);
    /* numpy: the permutation buffer; xoshiro: a per-book "drawn by reader"
     * stamp, so a sample without replacement costs O(sample). */
    uint32_t *perm = br_malloc(nb * sizeof *perm);
    uint32_t *pick = br_malloc((size_t)(o->max_per_user + 1) * sizeof *pick);
    uint64_t *stamp = numpy ? NULL : br_calloc(nb, sizeof *stamp);
    if (!perm || !pick || (!numpy && !stamp)) {
        br_free(perm);
        br_free(pick);
        br_free(stamp);
        return br_error(BR_ENOMEM, "generate: out of memory");
    }
    out_file f = {0};
    br_status st = of_open(&f, dir, "ratings.csv");
    br_progress prog;
    br_progress_begin(&prog, "generate ratings", o->n_users);
    if (st == BR_OK) of_str(&f, "user_id,book_id,rating\n");
    for (uint64_t u = 0; u < o->n_users && st == BR_OK; u++) {
        uint32_t k;
        if (numpy) {
            k = (uint32_t)o->min_per_user + mt_interval(mt, span);
            for (uint64_t i = 0; i < nb; i++) perm[i] = (uint32_t)i;
            for (uint64_t i = nb - 1; i > 0; i--) {
                uint32_t j = mt_interval(mt, (uint32_t)i), t = perm[i];
                perm[i] = perm[j];
                perm[j] = t;
            }
            memcpy(pick, perm, k * sizeof *pick);
        } else {
            k = (uint32_t)o->min_per_user + (uint32_t)br_rng_below(rng, span + 1);
            for (uint32_t j = 0; j < k; j++) {
                uint32_t b;
                do b = (uint32_t)br_rng_below(rng, nb);
                while (stamp[b] == u + 1);
                stamp[b] = u + 1;
                pick[j] = b;
            }
        }
        for (uint32_t j = 0; j < k; j++) {
            uint32_t rating = 1 + (numpy ? mt_interval(mt, 4) : (uint32_t)br_rng_below(rng, 5));
            of_u64(&f, u);
            of_put(&f, ",", 1);
            of_u64(&f, pick[j]);
            of_put(&f, ",", 1);
            char c[2] = {(char)('0' + rating), '\n'};
            of_put(&f, c, 2);
        }
        rep->n_ratings += k;
        st = f.st;
        if (st == BR_OK) st = br_progress_update(&prog, u + 1);
    }
    if (st == BR_OK) st = br_progress_end(&prog);
    rep->ratings_bytes = f.bytes + f.used;
    br_free(perm);
    br_free(pick);
    br_free(stamp);
    return of_commit(&f, st);
}

br_status br_generate(const br_generate_options *opt, const char *out_dir,
                      br_generate_report *report)
{
    br_generate_options o = opt ? *opt : (br_generate_options)BR_GENERATE_OPTIONS_DEFAULT;
    br_generate_report scratch;
    if (!report) report = &scratch;
    memset(report, 0, sizeof *report);
    uint64_t t0 = br_now_ns();
    if (o.n_books == 0 || o.n_users == 0)
        return br_error(BR_EINVAL, "generate: need at least one book and one reader");
    if (o.n_books > UINT32_MAX - 1)
        return br_error(BR_ERANGE, "generate: at most %u books", UINT32_MAX - 1);
    if (o.min_per_user < 1 || o.max_per_user < o.min_per_user)
        return br_error(BR_EINVAL, "generate: books per reader %d..%d is not a range",
                        o.min_per_user, o.max_per_user);
    if ((uint64_t)o.max_per_user > o.n_books)
        return br_error(BR_EINVAL,
                        "generate: readers rate up to %d distinct books but there are only %llu",
                        o.max_per_user, (unsigned long long)o.n_books);
    if (o.rng == BR_GEN_NUMPY && o.seed > UINT32_MAX)
        return br_error(BR_ERANGE, "generate: numpy seeds are 0 .. 2^32 - 1");
    if (o.rng != BR_GEN_NUMPY && o.rng != BR_GEN_XOSHIRO)
        return br_error(BR_EINVAL, "generate: unknown random stream %d", (int)o.rng);

    mt19937 *mt = NULL;
    br_rng rng;
    if (o.rng == BR_GEN_NUMPY) {
        mt = br_malloc(sizeof *mt);
        if (!mt) return br_error(BR_ENOMEM, "generate: out of memory");
        mt_seed(mt, (uint32_t)o.seed);
    } else {
        br_rng_seed(&rng, o.seed);
    }
    br_status st = write_books(&o, out_dir, mt, &rng, report);
    if (st == BR_OK) st = write_ratings(&o, out_dir, mt, &rng, report);
    br_free(mt);
    report->n_books = o.n_books;
    report->n_users = o.n_users;
    report->seconds = (double)(br_now_ns() - t0) / 1e9;
    return st;
}
