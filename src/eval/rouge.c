/* ROUGE-L as Google's rouge-score package computes it: its tokenizer
 * (lower-case, every character outside [a-z0-9] separates, optional Porter
 * stemming of tokens longer than 3 characters) and the longest common
 * subsequence of the two token sequences. */
#include <stdlib.h>
#include <string.h>

#include "lethe/stats.h"

/* Write the lower-cased [a-z0-9] runs of `text` into out, each followed by a
 * NUL; returns the number of runs. out needs strlen(text) + 1 bytes: every
 * input byte yields at most one output byte, except that a run's NUL may
 * follow its last byte. Python lower-cases two non-ASCII characters into
 * ASCII letters: U+0130 (C4 B0) into "i" + U+0307, and U+212A (E2 84 AA)
 * into "k". In valid UTF-8 those lead bytes never occur mid-character, so a
 * byte scan finds them; every other non-ASCII byte separates tokens. */
static size_t split_tokens(const char *text, char *out, size_t *out_len)
{
    const unsigned char *p = (const unsigned char *)text;
    size_t n = 0, o = 0;
    int in_token = 0;
    while (*p) {
        int c = -1; /* the ASCII character this position stands for, or -1 */
        size_t adv = 1;
        if ((*p >= 'a' && *p <= 'z') || (*p >= '0' && *p <= '9'))
            c = *p;
        else if (*p >= 'A' && *p <= 'Z')
            c = *p - 'A' + 'a';
        else if (p[0] == 0xE2 && p[1] == 0x84 && p[2] == 0xAA) {
            c = 'k';
            adv = 3;
        }
        if (c >= 0) {
            out[o++] = (char)c;
            in_token = 1;
        } else if (p[0] == 0xC4 && p[1] == 0xB0) { /* "i" then a separator */
            out[o++] = 'i';
            out[o++] = '\0';
            n++;
            in_token = 0;
            adv = 2;
        } else if (in_token) {
            out[o++] = '\0';
            n++;
            in_token = 0;
        }
        p += adv;
    }
    if (in_token) {
        out[o++] = '\0';
        n++;
    }
    *out_len = o;
    return n;
}

lethe_status lethe_rouge_tokenize(const char *text, int stem, char ***tokens, size_t *n)
{
    *tokens = NULL;
    *n = 0;
    size_t len = strlen(text), chars_len;
    char *chars = malloc(len + 1);
    if (!chars)
        return lethe_fail(LETHE_ERR_NOMEM, "rouge: out of memory for %zu bytes of text", len);
    size_t count = split_tokens(text, chars, &chars_len);
    if (count == 0) {
        free(chars);
        return LETHE_OK;
    }
    char **block = malloc(count * sizeof(char *) + chars_len);
    if (!block) {
        free(chars);
        return lethe_fail(LETHE_ERR_NOMEM, "rouge: out of memory for %zu tokens", count);
    }
    char *dst = (char *)(block + count);
    memcpy(dst, chars, chars_len);
    free(chars);
    for (size_t i = 0; i < count; i++) {
        size_t tl = strlen(dst);
        block[i] = dst;
        if (stem && tl > 3)
            lethe_porter_stem(dst, tl);
        dst += tl + 1;
    }
    *tokens = block;
    *n = count;
    return LETHE_OK;
}

/* Length of the longest common subsequence, with one row of the table. */
static lethe_status lcs_length(char **a, size_t na, char **b, size_t nb, size_t *out)
{
    size_t *row = calloc(nb + 1, sizeof *row);
    if (!row)
        return lethe_fail(LETHE_ERR_NOMEM, "rouge: out of memory for the LCS table");
    for (size_t i = 0; i < na; i++) {
        size_t diag = 0; /* table[i][j] while row holds table[i + 1][...] up to j */
        for (size_t j = 0; j < nb; j++) {
            size_t up = row[j + 1];
            if (!strcmp(a[i], b[j]))
                row[j + 1] = diag + 1;
            else if (row[j] > up)
                row[j + 1] = row[j];
            diag = up;
        }
    }
    *out = row[nb];
    free(row);
    return LETHE_OK;
}

lethe_status lethe_rouge_l(const char *ref, const char *hyp, int stem, lethe_rouge_score *out)
{
    char **rt = NULL, **ht = NULL;
    size_t nr = 0, nh = 0, lcs = 0;
    lethe_status st;
    out->precision = out->recall = out->f1 = 0.0;
    if ((st = lethe_rouge_tokenize(ref, stem, &rt, &nr)) != LETHE_OK)
        goto done;
    if ((st = lethe_rouge_tokenize(hyp, stem, &ht, &nh)) != LETHE_OK)
        goto done;
    if (nr == 0 || nh == 0)
        goto done;
    if ((st = lcs_length(rt, nr, ht, nh, &lcs)) != LETHE_OK)
        goto done;
    double p = (double)lcs / (double)nh, r = (double)lcs / (double)nr;
    out->precision = p;
    out->recall = r;
    out->f1 = (p + r > 0) ? 2 * p * r / (p + r) : 0.0;
done:
    free(rt);
    free(ht);
    return st;
}
