/*
 * book_text.c: the text the encoder reads for a book, in one of two
 * templates: the whole book (title, authors, genre, tags, description) or
 * the notebook's description alone. Which template each engine reads by
 * default is the engine registry's (br_engine_template, src/hybrid/).
 */
#include <string.h>

#include "bookrec/text.h"
#include "core/sbuf.h"

/* One part of the template: ". " between parts, nothing for empty ones. */
static void sb_part(br__sbuf *b, const char *prefix, const char *s)
{
    if (!s || !*s) return;
    if (b->len) br__sb_put(b, ". ", 2);
    if (prefix) br__sb_str(b, prefix);
    br__sb_str(b, s);
}

br_status br_book_text(const br_book *b, br_book_template t, char **out)
{
    br__sbuf sb = {0};
    *out = NULL;
    if (t == BR_TEXT_DESCRIPTION) {
        sb_part(&sb, NULL, b->description && *b->description ? b->description : b->title);
    } else {
        sb_part(&sb, NULL, b->title);
        sb_part(&sb, "by ", b->authors);
        sb_part(&sb, NULL, b->genre);
        if (b->tags && *b->tags) {
            /* "a|b|c" reads as "a, b, c" */
            if (sb.len) br__sb_put(&sb, ". ", 2);
            for (const char *p = b->tags; *p; p++)
                br__sb_put(&sb, *p == '|' ? ", " : p, *p == '|' ? 2 : 1);
        }
        sb_part(&sb, NULL, b->description);
    }
    if (!(*out = br__sb_take(&sb))) return br_error(BR_ENOMEM, "book text");
    return BR_OK;
}
