/*
 * tribes_plot.c: the tribes picture with cairo: books as dots in the 2-D
 * PCA plane, one colour per tribe, a legend of tribe names and sizes, axis
 * titles carrying the explained variance, a title, and the most central
 * book of each tribe labelled. PNG, SVG or PDF by the file extension.
 *
 * Drawn in user units with a white background so it reads on any viewer;
 * the palette is Tableau 10 followed by its light variants (20 tribes
 * distinct); beyond that colours repeat. The file is written beside its
 * final name and renamed, so a viewer never sees half a picture.
 */
#include <cairo-pdf.h>
#include <cairo-svg.h>
#include <cairo.h>
#include <errno.h>
#include <fontconfig/fontconfig.h>
#include <math.h>
#include <stdio.h>
#include <string.h>
#include <strings.h>
#include <unistd.h>

#include "bookrec/content.h"
#include "core/afile.h"

static const double palette[20][3] = {
    {0.122, 0.467, 0.706}, {1.000, 0.498, 0.055}, {0.173, 0.627, 0.173}, {0.839, 0.153, 0.157},
    {0.580, 0.404, 0.741}, {0.549, 0.337, 0.294}, {0.890, 0.467, 0.761}, {0.498, 0.498, 0.498},
    {0.737, 0.741, 0.133}, {0.090, 0.745, 0.812}, {0.682, 0.780, 0.910}, {1.000, 0.733, 0.471},
    {0.596, 0.875, 0.541}, {1.000, 0.596, 0.588}, {0.773, 0.690, 0.835}, {0.769, 0.612, 0.580},
    {0.969, 0.714, 0.824}, {0.780, 0.780, 0.780}, {0.859, 0.859, 0.553}, {0.620, 0.855, 0.898},
};

static void color(cairo_t *cr, uint32_t j, double alpha)
{
    const double *c = palette[j % 20];
    cairo_set_source_rgba(cr, c[0], c[1], c[2], alpha);
}

/* A "nice" tick step (1, 2 or 5 x 10^k) giving about `want` ticks. */
static double nice_step(double range, int want)
{
    double raw = range / want, mag = pow(10, floor(log10(raw))), f = raw / mag;
    return (f < 1.5 ? 1 : f < 3.5 ? 2 : f < 7.5 ? 5 : 10) * mag;
}

static void text_at(cairo_t *cr, double x, double y, const char *s, double ax, double ay)
{
    cairo_text_extents_t e;
    cairo_text_extents(cr, s, &e);
    cairo_move_to(cr, x - ax * e.width - e.x_bearing, y - ay * e.height - e.y_bearing);
    cairo_show_text(cr, s);
}

/* A label with a white halo so it reads over the dots. */
static void halo_text(cairo_t *cr, double x, double y, const char *s)
{
    cairo_text_extents_t e;
    cairo_text_extents(cr, s, &e);
    double tx = x + 6, ty = y - 6;
    cairo_new_path(cr);
    cairo_move_to(cr, tx, ty);
    cairo_text_path(cr, s);
    cairo_set_source_rgba(cr, 1, 1, 1, 0.9);
    cairo_set_line_width(cr, 3.5);
    cairo_set_line_join(cr, CAIRO_LINE_JOIN_ROUND);
    cairo_stroke(cr);
    cairo_set_source_rgb(cr, 0.1, 0.1, 0.1);
    cairo_new_path(cr);
    cairo_move_to(cr, tx, ty);
    cairo_show_text(cr, s);
    cairo_new_path(cr);
}

static void draw(cairo_t *cr, const br_tribes *t, const br_plot_options *o)
{
    const double W = o->width, H = o->height;
    const double left = 90, right = 360, top = 70, bottom = 80;
    const double pw = W - left - right, ph = H - top - bottom;
    cairo_set_source_rgb(cr, 1, 1, 1);
    cairo_paint(cr);
    cairo_select_font_face(cr, "DejaVu Sans", CAIRO_FONT_SLANT_NORMAL, CAIRO_FONT_WEIGHT_NORMAL);

    /* data range, padded */
    double x0 = INFINITY, x1 = -INFINITY, y0 = INFINITY, y1 = -INFINITY;
    for (size_t i = 0; i < t->n_books; i++) {
        double x = t->pca2[2 * i], y = t->pca2[2 * i + 1];
        x0 = fmin(x0, x), x1 = fmax(x1, x), y0 = fmin(y0, y), y1 = fmax(y1, y);
    }
    if (!(x1 > x0)) x0 -= 1, x1 += 1;
    if (!(y1 > y0)) y0 -= 1, y1 += 1;
    double px = 0.04 * (x1 - x0), py = 0.04 * (y1 - y0);
    x0 -= px, x1 += px, y0 -= py, y1 += py;
#define SX(v) (left + ((v) - x0) / (x1 - x0) * pw)
#define SY(v) (top + ph - ((v) - y0) / (y1 - y0) * ph)

    /* grid and ticks */
    cairo_set_font_size(cr, 13);
    cairo_set_line_width(cr, 1);
    double sx = nice_step(x1 - x0, 8), sy = nice_step(y1 - y0, 6);
    char buf[256];
    for (double v = ceil(x0 / sx) * sx; v <= x1; v += sx) {
        cairo_set_source_rgb(cr, 0.92, 0.92, 0.92);
        cairo_move_to(cr, SX(v), top);
        cairo_line_to(cr, SX(v), top + ph);
        cairo_stroke(cr);
        cairo_set_source_rgb(cr, 0.25, 0.25, 0.25);
        snprintf(buf, sizeof buf, "%g", fabs(v) < 1e-12 ? 0.0 : v);
        text_at(cr, SX(v), top + ph + 8, buf, 0.5, 0);
    }
    for (double v = ceil(y0 / sy) * sy; v <= y1; v += sy) {
        cairo_set_source_rgb(cr, 0.92, 0.92, 0.92);
        cairo_move_to(cr, left, SY(v));
        cairo_line_to(cr, left + pw, SY(v));
        cairo_stroke(cr);
        cairo_set_source_rgb(cr, 0.25, 0.25, 0.25);
        snprintf(buf, sizeof buf, "%g", fabs(v) < 1e-12 ? 0.0 : v);
        text_at(cr, left - 8, SY(v), buf, 1, 0.5);
    }

    /* the books: larger tribes first so small ones stay visible on top */
    double r = t->n_books > 5000 ? 2.2 : t->n_books > 2000 ? 3 : 4.2;
    uint32_t *order = br_malloc(t->k * sizeof(uint32_t));
    if (order) {
        for (uint32_t j = 0; j < t->k; j++) order[j] = j;
        for (uint32_t a = 0; a < t->k; a++)
            for (uint32_t b = a + 1; b < t->k; b++)
                if (t->tribe[order[b]].size > t->tribe[order[a]].size) {
                    uint32_t tmp = order[a];
                    order[a] = order[b];
                    order[b] = tmp;
                }
        for (uint32_t oj = 0; oj < t->k; oj++) {
            uint32_t j = order[oj];
            color(cr, j, 0.72);
            for (size_t i = 0; i < t->n_books; i++) {
                if (t->labels[i] != (int32_t)j) continue;
                cairo_new_sub_path(cr);
                cairo_arc(cr, SX(t->pca2[2 * i]), SY(t->pca2[2 * i + 1]), r, 0, 2 * M_PI);
            }
            cairo_fill(cr);
        }
        br_free(order);
    }
    /* frame */
    cairo_set_source_rgb(cr, 0.3, 0.3, 0.3);
    cairo_set_line_width(cr, 1.2);
    cairo_rectangle(cr, left, top, pw, ph);
    cairo_stroke(cr);

    /* labels: the most central books */
    cairo_set_font_size(cr, 12);
    for (uint32_t j = 0; j < t->k; j++)
        for (uint32_t c = 0; c < t->tribe[j].n_central && (int)c < o->label_per_tribe; c++) {
            size_t i = t->tribe[j].central[c];
            char s[64];
            snprintf(s, sizeof s, "%.40s%s", t->titles[i], strlen(t->titles[i]) > 40 ? "..." : "");
            double x = SX(t->pca2[2 * i]), y = SY(t->pca2[2 * i + 1]);
            cairo_set_source_rgb(cr, 0.1, 0.1, 0.1);
            cairo_new_path(cr); /* no line from the previous label's end */
            cairo_arc(cr, x, y, r + 1.5, 0, 2 * M_PI);
            cairo_set_line_width(cr, 1.5);
            cairo_stroke(cr);
            halo_text(cr, x, y, s);
        }

    /* axis titles and title */
    cairo_set_source_rgb(cr, 0.1, 0.1, 0.1);
    cairo_set_font_size(cr, 15);
    snprintf(buf, sizeof buf, "PC1: %.1f%% of the variance", 100 * t->evr[0]);
    text_at(cr, left + pw / 2, H - 30, buf, 0.5, 0.5);
    cairo_save(cr);
    cairo_translate(cr, 28, top + ph / 2);
    cairo_rotate(cr, -M_PI / 2);
    snprintf(buf, sizeof buf, "PC2: %.1f%% of the variance", 100 * t->evr[1]);
    text_at(cr, 0, 0, buf, 0.5, 0.5);
    cairo_restore(cr);
    cairo_select_font_face(cr, "DejaVu Sans", CAIRO_FONT_SLANT_NORMAL, CAIRO_FONT_WEIGHT_BOLD);
    cairo_set_font_size(cr, 20);
    if (o->title)
        snprintf(buf, sizeof buf, "%s", o->title);
    else
        snprintf(buf, sizeof buf, "Book tribes: k-means (k = %u) on %zu book embeddings, PCA view",
                 t->k, t->n_books);
    text_at(cr, left + pw / 2, 35, buf, 0.5, 0.5);

    /* legend */
    double lx = left + pw + 30, ly = top + 4;
    cairo_set_font_size(cr, 15);
    cairo_set_source_rgb(cr, 0.1, 0.1, 0.1);
    text_at(cr, lx, ly, "Tribe (books)", 0, 0);
    cairo_select_font_face(cr, "DejaVu Sans", CAIRO_FONT_SLANT_NORMAL, CAIRO_FONT_WEIGHT_NORMAL);
    double fs = t->k > 24 ? 10 : 13, step = fmin(26, (ph - 30) / (t->k ? t->k : 1));
    cairo_set_font_size(cr, fs);
    for (uint32_t j = 0; j < t->k; j++) {
        double y = ly + 34 + j * step;
        color(cr, j, 0.9);
        cairo_arc(cr, lx + 7, y, 6, 0, 2 * M_PI);
        cairo_fill(cr);
        cairo_set_source_rgb(cr, 0.1, 0.1, 0.1);
        char s[160];
        snprintf(s, sizeof s, "%.32s%s (%u)", t->tribe[j].name,
                 strlen(t->tribe[j].name) > 32 ? "..." : "", t->tribe[j].size);
        text_at(cr, lx + 20, y, s, 0, 0.5);
    }
    if (o->label_per_tribe > 0) {
        cairo_set_font_size(cr, 11);
        cairo_set_source_rgb(cr, 0.35, 0.35, 0.35);
        text_at(cr, lx, ly + 34 + t->k * step + 6, "ringed: a tribe's most central book(s)", 0, 0);
    }
#undef SX
#undef SY
}

static cairo_status_t to_file(void *f, const unsigned char *data, unsigned int len)
{
    return fwrite(data, 1, len, f) == len ? CAIRO_STATUS_SUCCESS : CAIRO_STATUS_WRITE_ERROR;
}

br_status br_plot_tribes(const br_tribes *t, const br_plot_options *opt, const char *path)
{
    if (!t || !path || !t->pca2 || !t->labels)
        return br_error(BR_EINVAL, "plot: bad arguments");
    br_plot_options o = BR_PLOT_OPTIONS_DEFAULT;
    if (opt) o = *opt;
    if (o.width < 400 || o.height < 300 || o.width > 20000 || o.height > 20000)
        return br_error(BR_EINVAL, "plot: size %d x %d out of range (400x300 .. 20000)", o.width,
                        o.height);
    const char *ext = strrchr(path, '.');
    int kind = !ext ? -1 : !strcasecmp(ext, ".png") ? 0 : !strcasecmp(ext, ".svg") ? 1
                                                  : !strcasecmp(ext, ".pdf") ? 2 : -1;
    if (kind < 0)
        return br_error(BR_EINVAL, "plot: %s: the extension must be .png, .svg or .pdf", path);
    /* cairo writes into the temporary through its stream interface */
    br__afile a;
    br_status st = br__afile_open(&a, path);
    if (st) return st;
    cairo_surface_t *s =
        kind == 0   ? cairo_image_surface_create(CAIRO_FORMAT_RGB24, o.width, o.height)
        : kind == 1 ? cairo_svg_surface_create_for_stream(to_file, a.f, o.width, o.height)
                    : cairo_pdf_surface_create_for_stream(to_file, a.f, o.width, o.height);
    cairo_status_t cs = cairo_surface_status(s);
    if (cs == CAIRO_STATUS_SUCCESS) {
        cairo_t *cr = cairo_create(s);
        draw(cr, t, &o);
        cs = cairo_status(cr);
        cairo_destroy(cr);
    }
    if (cs == CAIRO_STATUS_SUCCESS && kind == 0)
        cs = cairo_surface_write_to_png_stream(s, to_file, a.f);
    cairo_surface_finish(s);
    if (cs == CAIRO_STATUS_SUCCESS) cs = cairo_surface_status(s);
    cairo_surface_destroy(s);
    if (cs != CAIRO_STATUS_SUCCESS) {
        br__afile_abort(&a);
        return br_error(BR_EIO, "plot: %s: %s", path, cairo_status_to_string(cs));
    }
    return br__afile_commit(&a);
}

void br_plot_release_caches(void)
{
    cairo_debug_reset_static_data();
    FcFini(); /* cairo's font backend initialised fontconfig; FcInit runs again on demand */
}
