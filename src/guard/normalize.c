/* Text normalisation for the target index (the rules are in guard_index.h). */
#include "guard_impl.h"

size_t lethe_guard_normalize(const void *text, size_t len, unsigned char *out)
{
    const unsigned char *s = text;
    size_t n = 0;
    int pending = 0; /* a separator run follows kept bytes: one space owed */
    for (size_t i = 0; i < len; i++) {
        unsigned char b = s[i];
        if (!guard_is_word_byte(b)) {
            pending = n > 0;
            continue;
        }
        if (pending)
            out[n++] = ' ';
        pending = 0;
        /* n <= i here: out may alias text, writes never pass the reads */
        out[n++] = guard_lower(b);
    }
    return n;
}
