/* Language-model unlearning sets (lethe/lm_unlearn.h): question-answer
 * pairs in TOFU's layout (lethe_qa_encode), padded, and windows of raw
 * text. */
#include "lethe/lm_unlearn.h"
#include "lethe/gpt_train.h"
#include "lethe/rng.h"
#include "lethe/tofu.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#define STREAM_IDK 0x49444B00ull

void lethe_lm_data_free(lethe_lm_data *d)
{
    if (!d)
        return;
    free(d->tokens);
    free(d->targets);
    memset(d, 0, sizeof *d);
}

lethe_status lethe_lm_data_build(const lethe_tokenizer_t *tok, int32_t eot, int n_positions,
                                 const char *const *questions, const char *const *answers,
                                 size_t n, const char *name, lethe_lm_data *out)
{
    memset(out, 0, sizeof *out);
    if (n == 0)
        return lethe_fail(LETHE_ERR_INVALID, "%s: no question-answer pairs", name);
    if (eot < 0)
        return lethe_fail(LETHE_ERR_INVALID, "%s: the tokenizer has no <|endoftext|> token to "
                          "close the answers", name);
    int32_t **ids = calloc(n, sizeof *ids);
    int *np = calloc(n, sizeof *np), *len = calloc(n, sizeof *len);
    lethe_status st = LETHE_OK;
    int T = 1;
    if (!ids || !np || !len) {
        st = lethe_fail(LETHE_ERR_NOMEM, "out of memory encoding %s", name);
        goto done;
    }
    for (size_t i = 0; i < n && st == LETHE_OK; i++) {
        st = lethe_qa_encode(tok, questions[i], answers[i], eot, &ids[i], &np[i], &len[i]);
        if (st != LETHE_OK) {
            if (st != LETHE_ERR_NOMEM) {
                char detail[512];
                snprintf(detail, sizeof detail, "%s", lethe_error_detail());
                st = lethe_fail(st, "%s row %zu: %s", name, i + 1, detail);
            }
            break;
        }
        if (len[i] - 1 > n_positions)
            st = lethe_fail(LETHE_ERR_INVALID, "%s row %zu: the question-answer pair needs %d "
                            "positions (%d tokens), more than the model's context of %d", name,
                            i + 1, len[i] - 1, len[i], n_positions);
        else if (len[i] <= np[i] || np[i] < 1)
            st = lethe_fail(LETHE_ERR_INVALID, "%s row %zu: no answer token", name, i + 1);
        else if (len[i] - 1 > T)
            T = len[i] - 1;
    }
    if (st != LETHE_OK)
        goto done;
    out->tokens = malloc(sizeof(int32_t) * n * (size_t)T);
    out->targets = malloc(sizeof(int32_t) * n * (size_t)T);
    if (!out->tokens || !out->targets) {
        st = lethe_fail(LETHE_ERR_NOMEM, "out of memory for %s (%zu x %d tokens)", name, n, T);
        goto done;
    }
    for (size_t i = 0; i < n; i++) {
        int32_t *x = out->tokens + i * (size_t)T, *y = out->targets + i * (size_t)T;
        int m = len[i] - 1;
        for (int t = 0; t < T; t++) {
            x[t] = t < m ? ids[i][t] : eot;
            /* position t predicts token t + 1: a target when that is an answer token */
            y[t] = t < m && t + 1 >= np[i] ? ids[i][t + 1] : -1;
        }
    }
    out->set = (lethe_lm_set){out->tokens, out->targets, (long)n, T};
done:
    if (ids)
        for (size_t i = 0; i < n; i++)
            free(ids[i]);
    free(ids);
    free(np);
    free(len);
    if (st != LETHE_OK)
        lethe_lm_data_free(out);
    return st;
}

lethe_status lethe_lm_data_windows(const lethe_tokenizer_t *tok, int32_t eot, int n_positions,
                                   const char *const *texts, const size_t *lens, size_t n,
                                   const char *name, lethe_lm_data *out)
{
    memset(out, 0, sizeof *out);
    if (n == 0)
        return lethe_fail(LETHE_ERR_INVALID, "%s: no documents", name);
    if (eot < 0)
        return lethe_fail(LETHE_ERR_INVALID, "%s: the tokenizer has no <|endoftext|> token to "
                          "close the documents", name);
    if (n_positions < 1)
        return lethe_fail(LETHE_ERR_INVALID, "%s: a context of %d positions", name,
                          n_positions);
    size_t *idx = malloc(sizeof *idx * n);
    int32_t *s = NULL;
    long m = 0;
    lethe_status st = idx ? LETHE_OK : lethe_fail(LETHE_ERR_NOMEM, "out of memory");
    for (size_t i = 0; idx && i < n; i++)
        idx[i] = i;
    if (st == LETHE_OK)
        st = lethe_gpt_encode_docs(tok, texts, lens, idx, n, eot, &s, &m);
    free(idx);
    if (st == LETHE_OK && m < 2)
        st = lethe_fail(LETHE_ERR_INVALID, "%s: no text (%zu empty document%s)", name, n,
                        n == 1 ? "" : "s");
    if (st != LETHE_OK) {
        free(s);
        return st;
    }
    /* m - 1 positions predict a next token */
    int T = m - 1 < n_positions ? (int)(m - 1) : n_positions;
    long W = (m - 1 + T - 1) / T;
    out->tokens = malloc(sizeof(int32_t) * (size_t)W * (size_t)T);
    out->targets = malloc(sizeof(int32_t) * (size_t)W * (size_t)T);
    if (!out->tokens || !out->targets) {
        free(s);
        lethe_lm_data_free(out);
        return lethe_fail(LETHE_ERR_NOMEM, "out of memory for %s (%ld x %d tokens)", name, W,
                          T);
    }
    /* window k, position t is stream position kT + t: the windows laid end
       to end are the stream */
    for (long p = 0; p < W * T; p++) {
        out->tokens[p] = p < m - 1 ? s[p] : eot;
        out->targets[p] = p < m - 1 ? s[p + 1] : -1;
    }
    free(s);
    out->set = (lethe_lm_set){out->tokens, out->targets, W, T};
    return LETHE_OK;
}

long lethe_lm_idk_pick(long i, long n_idk, uint64_t seed)
{
    if (n_idk <= 1)
        return 0;
    uint64_t h = lethe_rng_hash(seed, STREAM_IDK, (uint64_t)i);
    double u = (double)(h >> 11) * (1.0 / 9007199254740992.0);
    long r = (long)(u * (double)n_idk);
    return r < n_idk ? r : n_idk - 1;
}
