/* Membership inference on GPT language models (lethe/lm_mia.h, docs/mia.md):
 * the per-text attack scores, their ROC, and the evaluation run that writes
 * MIA_EVAL.json and MIA_SUMMARY.json. */
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <cjson/cJSON.h>
#include <zlib.h>

#include "lethe/fileio.h"
#include "lethe/gpt_generate.h"
#include "lethe/gpt_hf.h"
#include "lethe/json.h"
#include "lethe/lm_mia.h"
#include "lethe/run.h"
#include "lethe/tofu.h"

const char *lethe_lm_mia_name(int attack)
{
    static const char *const names[LETHE_MIA_N_ATTACKS] = {
        "loss", "zlib", "min_k", "min_k_plus_plus", "reference", "gradnorm"};
    return attack >= 0 && attack < LETHE_MIA_N_ATTACKS ? names[attack] : "?";
}

/* st with "WHERE: " before the current detail message (copied first: the
 * message is formatted into the same buffer). */
static lethe_status at(lethe_status st, const char *where)
{
    char msg[1024];
    snprintf(msg, sizeof msg, "%s", lethe_error_detail());
    return lethe_fail(st, "%s: %s", where, msg);
}

/* ------------------------------------------------------------------ texts */

lethe_status lethe_lm_mia_encode(const lethe_tokenizer_t *tok, int32_t eot, int n_positions,
                                 const char *text, int32_t **ids, int *len)
{
    *ids = NULL, *len = 0;
    uint32_t *t = NULL;
    size_t n = 0;
    lethe_status st = lethe_tokenizer_encode(tok, text, strlen(text), &t, &n);
    if (st)
        return st;
    int head = eot >= 0, m = (int)(n < (size_t)1 << 30 ? n : (size_t)1 << 30) + head;
    if (m - 1 > n_positions)
        st = lethe_fail(LETHE_ERR_INVALID, "the text has %zu tokens, more than the %d the "
                        "model's context of %d holds", n, n_positions + 1 - head, n_positions);
    else if (m - 1 < 2)
        st = lethe_fail(LETHE_ERR_INVALID, "the text has %d scored token%s; the attacks need "
                        "at least 2", m - 1 > 0 ? m - 1 : 0, m - 1 == 1 ? "" : "s");
    int32_t *out = st ? NULL : malloc(sizeof *out * (size_t)m);
    if (!st && !out)
        st = lethe_fail(LETHE_ERR_NOMEM, "out of memory");
    if (!st) {
        if (head)
            out[0] = eot;
        for (size_t i = 0; i < n; i++)
            out[head + i] = (int32_t)t[i];
        *ids = out, *len = m;
    }
    free(t);
    return st;
}

/* Bytes of zlib.compress(text) at the default level, as Python's. */
static lethe_status zlib_len(const char *text, double *out)
{
    uLong n = (uLong)strlen(text);
    uLongf cap = compressBound(n);
    Bytef *buf = malloc(cap ? cap : 1);
    if (!buf)
        return lethe_fail(LETHE_ERR_NOMEM, "out of memory");
    int z = compress2(buf, &cap, (const Bytef *)text, n, Z_DEFAULT_COMPRESSION);
    free(buf);
    if (z != Z_OK)
        return lethe_fail(LETHE_ERR_FAILED, "zlib failed to compress a text (%d)", z);
    *out = (double)cap;
    return LETHE_OK;
}

static int by_value(const void *a, const void *b)
{
    double x = *(const double *)a, y = *(const double *)b;
    return (x > y) - (x < y);
}

/* -mean of the max(1, floor(k n)) smallest of v[0..n) (sorted in place). */
static double min_k_mean(double *v, int n, double k)
{
    qsort(v, (size_t)n, sizeof *v, by_value);
    int m = (int)((double)n * k);
    if (m < 1)
        m = 1;
    double s = 0;
    for (int i = 0; i < m; i++)
        s += v[i];
    return -s / m;
}

/* ------------------------------------------------------------ the attacks */

/* "WHAT I: " before st's message (i counted from 1), unless out of memory. */
static lethe_status at_item(lethe_status st, const char *what, size_t i)
{
    if (!st || st == LETHE_ERR_NOMEM)
        return st;
    char w[64];
    snprintf(w, sizeof w, "%s %zu", what, i + 1);
    return at(st, w);
}

/* A sequence the attacks can score within P positions. */
static lethe_status seq_check(const lethe_lm_mia_seq *s, int P)
{
    if (s->start < 1 || s->start > s->len)
        return lethe_fail(LETHE_ERR_INVALID, "the scored tokens start at %d of %d", s->start,
                          s->len);
    if (s->len - 1 > P)
        return lethe_fail(LETHE_ERR_INVALID, "the sequence has %d tokens, more than the %d "
                          "the model's context of %d holds", s->len, P + 1, P);
    int n = s->len - s->start;
    if (n < 2)
        return lethe_fail(LETHE_ERR_INVALID, "the sequence has %d scored token%s; the attacks "
                          "need at least 2", n, n == 1 ? "" : "s");
    return LETHE_OK;
}

lethe_status lethe_lm_mia_seq_scores(const lethe_gpt *g, const lethe_gpt *ref,
                                     const lethe_lm_mia_seq *seqs, size_t n, double k,
                                     int batch, lethe_lm_mia_score *out)
{
    if (!(k > 0 && k <= 1))
        return lethe_fail(LETHE_ERR_INVALID, "the Min-K%% fraction must be in (0, 1], got %g", k);
    if (ref && ref->cfg.vocab_size != g->cfg.vocab_size)
        return lethe_fail(LETHE_ERR_INVALID, "the reference model's vocabulary (%d tokens) is "
                          "not the model's (%d)", ref->cfg.vocab_size, g->cfg.vocab_size);
    const int V = g->cfg.vocab_size;
    int P = g->cfg.n_positions;
    if (ref && ref->cfg.n_positions < P)
        P = ref->cfg.n_positions;
    lethe_status st = LETHE_OK;
    for (size_t i = 0; i < n && !st; i++)
        st = at_item(seq_check(&seqs[i], P), "sequence", i);
    if (st)
        return st;
    if (batch < 1)
        batch = 1;
    int32_t *tok_b = malloc(sizeof(int32_t) * (size_t)batch * (size_t)P);
    int32_t *tgt_b = malloc(sizeof(int32_t) * (size_t)batch * (size_t)P);
    double *v = malloc(sizeof(double) * (size_t)P), *z = malloc(sizeof(double) * (size_t)P);
    lethe_gpt_ctx *x = lethe_gpt_ctx_new(), *xr = ref ? lethe_gpt_ctx_new() : NULL;
    if (!tok_b || !tgt_b || !v || !z || !x || (ref && !xr)) {
        st = lethe_fail(LETHE_ERR_NOMEM, "out of memory");
        goto done;
    }
    for (size_t i0 = 0; i0 < n && !st; i0 += (size_t)batch) {
        int B = (int)(n - i0 < (size_t)batch ? n - i0 : (size_t)batch), T = 1;
        for (int b = 0; b < B; b++)
            T = seqs[i0 + b].len - 1 > T ? seqs[i0 + b].len - 1 : T;
        /* position t predicts token t + 1; the scored tokens are the
         * targets; padding has none */
        for (int b = 0; b < B; b++) {
            const int32_t *s = seqs[i0 + b].ids;
            int m = seqs[i0 + b].len, s0 = seqs[i0 + b].start;
            for (int t = 0; t < T; t++) {
                tok_b[b * T + t] = t < m - 1 ? s[t] : s[0];
                tgt_b[b * T + t] = t >= s0 - 1 && t < m - 1 ? s[t + 1] : -1;
            }
        }
        if ((st = lethe_gpt_ctx_forward(x, g, tok_b, tgt_b, B, T)) ||
            (ref && (st = lethe_gpt_ctx_forward(xr, ref, tok_b, tgt_b, B, T))))
            goto done;
        for (int b = 0; b < B; b++) {
            size_t i = i0 + (size_t)b;
            const lethe_lm_mia_seq *sq = &seqs[i];
            lethe_lm_mia_score *o = &out[i];
            const int s0 = sq->start - 1; /* the row of the first scored token */
            const float *zl0 = x->logits + (long)b * T * V;
            const float *lp = x->logprobs + (long)b * T + s0, *zl = zl0 + (long)s0 * V;
            int n_sc = sq->len - sq->start;
            double nll = 0, nll_ref = 0;
            for (int t = 0; t < n_sc; t++) {
                nll -= lp[t];
                if (ref)
                    nll_ref -= xr->logprobs[(long)b * T + s0 + t];
            }
            nll /= n_sc, nll_ref /= n_sc;
            for (int a = 0; a < LETHE_MIA_N_ATTACKS; a++)
                o->score[a] = NAN;
            o->n = n_sc;
            o->score[LETHE_MIA_LOSS] = nll;
            double zl_len = 0;
            if ((st = zlib_len(sq->text, &zl_len)))
                goto done;
            o->score[LETHE_MIA_ZLIB] = nll / zl_len;
            if (ref)
                o->score[LETHE_MIA_REFERENCE] = nll - nll_ref;
            /* Min-K% and Min-K%++ leave the last token out, as
             * OpenUnlearning's tokenwise log-probabilities do */
            for (int t = 0; t < n_sc - 1; t++) {
                double mu, s2;
                lethe_gpt_logit_moments(zl + (long)t * V, V, &mu, &s2);
                v[t] = lp[t];
                z[t] = (lp[t] - mu) / sqrt(s2 > 1e-6 ? s2 : 1e-6);
            }
            o->score[LETHE_MIA_MIN_K] = min_k_mean(v, n_sc - 1, k);
            o->score[LETHE_MIA_MIN_K_PP] = min_k_mean(z, n_sc - 1, k);
            lethe_qa_score q;
            lethe_qa_score_rows(zl0, x->logprobs + (long)b * T, V, sq->ids, sq->start, sq->len,
                                0, &q);
            lethe_tofu_memo(&q, LETHE_TOFU_MEMO_PAPER, &o->em, &o->es);
        }
    }
done:
    free(tok_b);
    free(tgt_b);
    free(v);
    free(z);
    lethe_gpt_ctx_free(x);
    lethe_gpt_ctx_free(xr);
    return st;
}

lethe_status lethe_lm_mia_seq_gradnorm(lethe_gpt *g, const lethe_lm_mia_seq *seqs, size_t n,
                                       lethe_lm_mia_score *out)
{
    lethe_status st = LETHE_OK;
    for (size_t i = 0; i < n && !st; i++)
        st = at_item(seq_check(&seqs[i], g->cfg.n_positions), "sequence", i);
    int32_t *tgt = st ? NULL : malloc(sizeof *tgt * (size_t)g->cfg.n_positions);
    if (!st && !tgt)
        st = lethe_fail(LETHE_ERR_NOMEM, "out of memory");
    for (size_t i = 0; i < n && !st; i++) {
        /* the loss of the scored tokens but the last (OpenUnlearning's
         * tokenwise log-probabilities), averaged */
        const lethe_lm_mia_seq *s = &seqs[i];
        int T = s->len - 1;
        for (int t = 0; t < T; t++)
            tgt[t] = t >= s->start - 1 && t < T - 1 ? s->ids[t + 1] : -1;
        if ((st = lethe_gpt_forward(g, s->ids, tgt, 1, T)))
            break;
        lethe_gpt_zero_grad(g);
        lethe_gpt_backward(g);
        double sum = 0;
        for (int j = 0; j < g->n_tensors; j++) {
            const float *d = g->grads + g->tensors[j].offset;
            double q = 0;
            for (long e = 0; e < g->tensors[j].numel; e++)
                q += (double)d[e] * d[e];
            sum += sqrt(q);
        }
        out[i].score[LETHE_MIA_GRADNORM] = sum / g->n_tensors;
    }
    free(tgt);
    lethe_gpt_zero_grad(g);
    return st;
}

/* texts[0..n) encoded as sequences (every token after the first scored);
 * *ids holds their tokens (free each and the array). */
static lethe_status text_seqs(const lethe_tokenizer_t *tok, int32_t eot, int P,
                              const char *const *texts, size_t n, int32_t ***ids,
                              lethe_lm_mia_seq **seqs)
{
    *ids = calloc(n ? n : 1, sizeof **ids);
    *seqs = calloc(n ? n : 1, sizeof **seqs);
    if (!*ids || !*seqs)
        return lethe_fail(LETHE_ERR_NOMEM, "out of memory");
    lethe_status st = LETHE_OK;
    for (size_t i = 0; i < n && !st; i++) {
        int len = 0;
        st = at_item(lethe_lm_mia_encode(tok, eot, P, texts[i], &(*ids)[i], &len), "text", i);
        (*seqs)[i] = (lethe_lm_mia_seq){(*ids)[i], len, 1, texts[i]};
    }
    return st;
}

static void text_seqs_free(int32_t **ids, lethe_lm_mia_seq *seqs, size_t n)
{
    for (size_t i = 0; ids && i < n; i++)
        free(ids[i]);
    free(ids);
    free(seqs);
}

lethe_status lethe_lm_mia_scores(const lethe_gpt *g, const lethe_gpt *ref,
                                 const lethe_tokenizer_t *tok, int32_t eot,
                                 const char *const *texts, size_t n, double k, int batch,
                                 lethe_lm_mia_score *out)
{
    if (!(k > 0 && k <= 1))
        return lethe_fail(LETHE_ERR_INVALID, "the Min-K%% fraction must be in (0, 1], got %g", k);
    int P = g->cfg.n_positions;
    if (ref && ref->cfg.n_positions < P)
        P = ref->cfg.n_positions;
    int32_t **ids = NULL;
    lethe_lm_mia_seq *seqs = NULL;
    lethe_status st = text_seqs(tok, eot, P, texts, n, &ids, &seqs);
    if (!st)
        st = lethe_lm_mia_seq_scores(g, ref, seqs, n, k, batch, out);
    text_seqs_free(ids, seqs, n);
    return st;
}

lethe_status lethe_lm_mia_gradnorm(lethe_gpt *g, const lethe_tokenizer_t *tok, int32_t eot,
                                   const char *const *texts, size_t n, lethe_lm_mia_score *out)
{
    int32_t **ids = NULL;
    lethe_lm_mia_seq *seqs = NULL;
    lethe_status st = text_seqs(tok, eot, g->cfg.n_positions, texts, n, &ids, &seqs);
    if (!st)
        st = lethe_lm_mia_seq_gradnorm(g, seqs, n, out);
    text_seqs_free(ids, seqs, n);
    return st;
}

lethe_status lethe_lm_mia_roc(const double *members, size_t n_members,
                              const double *nonmembers, size_t n_nonmembers,
                              lethe_roc_result *out)
{
    size_t n = n_members + n_nonmembers;
    double *s = malloc(sizeof *s * (n ? n : 1));
    int *y = malloc(sizeof *y * (n ? n : 1));
    lethe_status st = LETHE_OK;
    if (!s || !y)
        st = lethe_fail(LETHE_ERR_NOMEM, "out of memory");
    for (size_t i = 0; !st && i < n; i++) {
        int member = i < n_members;
        s[i] = -(member ? members[i] : nonmembers[i - n_members]);
        y[i] = member;
    }
    if (!st)
        st = lethe_stats_roc(s, y, n, out);
    free(s);
    free(y);
    return st;
}

lethe_status lethe_lm_mia_fit(const lethe_tokenizer_t *tok, int32_t eot, int n_positions,
                              const char *text, char **out, int *cut)
{
    int keep = eot >= 0 ? n_positions : n_positions + 1; /* lethe_lm_mia_encode's limit */
    uint32_t *t = NULL;
    size_t n = 0, len = strlen(text);
    *out = NULL, *cut = 0;
    lethe_status st = lethe_tokenizer_encode(tok, text, len, &t, &n);
    if (!st && n <= (size_t)keep) {
        if (!(*out = malloc(len + 1)))
            st = lethe_fail(LETHE_ERR_NOMEM, "out of memory");
        else
            memcpy(*out, text, len + 1);
        free(t);
        return st;
    }
    for (int k = keep; !st && k > 0; k--) {
        unsigned char *bytes = NULL;
        size_t blen = 0, m = 0;
        uint32_t *t2 = NULL;
        if ((st = lethe_tokenizer_decode(tok, t, (size_t)k, &bytes, &blen)))
            break;
        if (!(st = lethe_tokenizer_encode(tok, (char *)bytes, blen, &t2, &m)) &&
            m <= (size_t)keep) {
            *out = (char *)bytes, *cut = 1;
            free(t2);
            break;
        }
        free(t2);
        free(bytes);
    }
    free(t);
    return st;
}

/* ------------------------------------------------------------------ files */

static int blank(const char *s)
{
    for (; *s; s++)
        if (*s != ' ' && *s != '\t' && *s != '\r' && *s != '\f' && *s != '\v')
            return 0;
    return 1;
}

static int ends_with(const char *s, const char *tail)
{
    size_t n = strlen(s), m = strlen(tail);
    return n >= m && !strcmp(s + n - m, tail);
}

/* The m texts txt[] (bytes in all, NULs included) as one allocation into
 * *texts; *lines takes at. */
static lethe_status pack(const char **txt, size_t *at, size_t m, size_t bytes, const char *path,
                         char ***texts, size_t **lines, size_t *n)
{
    if (!m)
        return lethe_fail(LETHE_ERR_FORMAT, "%s: no texts", path);
    char **out = malloc(m * sizeof *out + bytes);
    if (!out)
        return lethe_fail(LETHE_ERR_NOMEM, "out of memory");
    char *p = (char *)(out + m);
    for (size_t i = 0; i < m; i++) {
        size_t l = strlen(txt[i]) + 1;
        out[i] = memcpy(p, txt[i], l);
        p += l;
    }
    *texts = out, *lines = at, *n = m;
    return LETHE_OK;
}

/* A JSON array of texts (strings, or objects with a "text"): MUSE's
 * privleak files. Items are numbered from 1 in place of lines. */
static lethe_status texts_json(const char *path, char ***texts, size_t **lines, size_t *n)
{
    unsigned char *raw = NULL;
    size_t len = 0;
    lethe_status st = lethe_file_read(path, &raw, &len);
    if (st)
        return st;
    cJSON *doc = cJSON_ParseWithLength((const char *)raw, len);
    free(raw);
    if (!cJSON_IsArray(doc)) {
        cJSON_Delete(doc);
        return lethe_fail(LETHE_ERR_FORMAT, "%s: not a JSON array of texts (a .json file; "
                          "name JSON Lines .jsonl)", path);
    }
    size_t n_all = (size_t)cJSON_GetArraySize(doc), m = 0, bytes = 0, i = 0;
    const char **txt = calloc(n_all ? n_all : 1, sizeof *txt);
    size_t *at = calloc(n_all ? n_all : 1, sizeof *at);
    if (!txt || !at)
        st = lethe_fail(LETHE_ERR_NOMEM, "out of memory");
    for (const cJSON *e = doc->child; !st && e; e = e->next, i++) {
        const char *t = cJSON_IsObject(e)
                            ? cJSON_GetStringValue(cJSON_GetObjectItemCaseSensitive(e, "text"))
                            : cJSON_GetStringValue(e);
        if (!t)
            st = lethe_fail(LETHE_ERR_FORMAT, "%s: item %zu is neither a string nor an object "
                            "with a string \"text\"", path, i + 1);
        else if (!blank(t))
            txt[m] = t, at[m] = i + 1, m++, bytes += strlen(t) + 1;
    }
    if (!st && !(st = pack(txt, at, m, bytes, path, texts, lines, n)))
        at = NULL;
    free(txt);
    free(at);
    cJSON_Delete(doc);
    return st;
}

lethe_status lethe_lm_mia_texts_read(const char *path, char ***texts, size_t **lines, size_t *n)
{
    *texts = NULL, *lines = NULL, *n = 0;
    if (ends_with(path, ".json"))
        return texts_json(path, texts, lines, n);
    char **raw = NULL;
    size_t n_raw = 0;
    lethe_status st = lethe_stats_lines_read(path, &raw, &n_raw);
    if (st)
        return st;
    int jsonl = ends_with(path, ".jsonl");
    const char **txt = calloc(n_raw, sizeof *txt);
    size_t *at = calloc(n_raw, sizeof *at), m = 0, bytes = 0;
    cJSON **docs = calloc(n_raw, sizeof *docs);
    if (!txt || !at || !docs)
        st = lethe_fail(LETHE_ERR_NOMEM, "out of memory");
    for (size_t i = 0; !st && i < n_raw; i++) {
        if (blank(raw[i]))
            continue;
        const char *t = raw[i];
        if (jsonl) {
            char where[4200];
            snprintf(where, sizeof where, "%s:%zu", path, i + 1);
            if ((st = lethe_json_parse_at(raw[i], strlen(raw[i]), path, i + 1, &docs[i])))
                break;
            if (cJSON_IsString(docs[i]))
                t = docs[i]->valuestring;
            else if (!cJSON_IsObject(docs[i]))
                st = lethe_fail(LETHE_ERR_FORMAT, "%s: expected an object with a \"text\" or "
                                "a string, got %s", where, lethe_json_type_name(docs[i]));
            else if ((st = lethe_json_get_string(docs[i], "text", where, &t)) ==
                     LETHE_ERR_NOT_FOUND)
                st = LETHE_ERR_FORMAT; /* the message names file, line and key */
            if (st)
                break;
        }
        txt[m] = t, at[m] = i + 1, m++;
        bytes += strlen(t) + 1;
    }
    if (!st && !(st = pack(txt, at, m, bytes, path, texts, lines, n)))
        at = NULL;
    for (size_t i = 0; docs && i < n_raw; i++)
        cJSON_Delete(docs[i]);
    free(docs);
    free(txt);
    free(at);
    free(raw);
    return st;
}

/* ------------------------------------------------------------------- runs */

void lethe_lm_mia_run_defaults(lethe_lm_mia_run_cfg *c)
{
    memset(c, 0, sizeof *c);
    c->k = 0.4;
    c->batch = 8;
}

/* One side of the evaluation: a file's texts and their scores. */
typedef struct side {
    const char *path;
    char **texts;
    size_t *lines, n;
    char **fitted; /* with fit: the texts as cut (owned), which texts[] point to */
    int n_cut;
    lethe_lm_mia_score *sc;
} side;

static lethe_status side_read(side *s, const char *path, const lethe_gpt_dir *m, int P, int fit)
{
    s->path = path;
    lethe_status st = lethe_lm_mia_texts_read(path, &s->texts, &s->lines, &s->n);
    if (!st && fit && !(s->fitted = calloc(s->n, sizeof *s->fitted)))
        st = lethe_fail(LETHE_ERR_NOMEM, "out of memory");
    for (size_t i = 0; !st && i < s->n; i++) {
        int32_t *ids = NULL;
        int len = 0, cut = 0;
        if (fit && !(st = lethe_lm_mia_fit(m->tok, (int32_t)m->eot, P, s->texts[i],
                                           &s->fitted[i], &cut)))
            s->texts[i] = s->fitted[i], s->n_cut += cut;
        if (!st)
            st = lethe_lm_mia_encode(m->tok, (int32_t)m->eot, P, s->texts[i], &ids, &len);
        free(ids);
        if (st && st != LETHE_ERR_NOMEM) {
            char w[4200];
            snprintf(w, sizeof w, "%s:%zu", path, s->lines[i]);
            st = at(st, w);
        }
    }
    if (!st && !(s->sc = calloc(s->n, sizeof *s->sc)))
        st = lethe_fail(LETHE_ERR_NOMEM, "out of memory");
    return st;
}

static void side_free(side *s)
{
    for (size_t i = 0; s->fitted && i < s->n; i++)
        free(s->fitted[i]);
    free(s->fitted);
    free(s->texts);
    free(s->lines);
    free(s->sc);
}

lethe_status lethe_lm_mia_ref_check(const lethe_gpt_dir *m, const char *run,
                                    const lethe_gpt_dir *r, const char *ref)
{
    if (r->model->cfg.vocab_size != m->model->cfg.vocab_size)
        return lethe_fail(LETHE_ERR_FORMAT, "%s: the reference model's vocabulary (%d tokens) "
                          "is not the model's (%d)", ref, r->model->cfg.vocab_size,
                          m->model->cfg.vocab_size);
    char *a = NULL, *b = NULL;
    lethe_status st = LETHE_OK;
    if (!r->tok)
        st = lethe_fail(LETHE_ERR_FORMAT, "%s: the reference model has no tokenizer", ref);
    else if (lethe_tokenizer_to_json(m->tok, &a) || lethe_tokenizer_to_json(r->tok, &b))
        st = lethe_fail(LETHE_ERR_NOMEM, "out of memory");
    else if (strcmp(a, b) || m->eot != r->eot)
        st = lethe_fail(LETHE_ERR_FORMAT, "%s: the reference model's tokenizer is not the one "
                        "of %s", ref, run);
    free(a);
    free(b);
    return st;
}

static void add_num(cJSON *o, const char *key, double v)
{
    if (isfinite(v))
        cJSON_AddNumberToObject(o, key, v);
    else
        cJSON_AddNullToObject(o, key);
}

/* {"agg_value": mean, "value_by_index": {"I": {"score": S}}} of one value
 * per text (attack a, or exact memorisation (-1) or extraction strength
 * (-2)). */
static cJSON *per_text(const lethe_lm_mia_score *sc, size_t n, int a)
{
    cJSON *o = cJSON_CreateObject(), *by = cJSON_CreateObject();
    double sum = 0;
    char key[32];
    for (size_t i = 0; o && by && i < n; i++) {
        double v = a >= 0 ? sc[i].score[a] : a == -1 ? sc[i].em : sc[i].es;
        cJSON *e = cJSON_CreateObject();
        add_num(e, "score", v);
        snprintf(key, sizeof key, "%zu", i);
        cJSON_AddItemToObject(by, key, e);
        sum += v;
    }
    add_num(o, "agg_value", sum / (double)n);
    cJSON_AddItemToObject(o, "value_by_index", by);
    return o;
}

lethe_status lethe_lm_mia_report(const lethe_lm_mia_score *members, size_t n_members,
                                 const lethe_lm_mia_score *nonmembers, size_t n_nonmembers,
                                 int attack, cJSON *eval, cJSON *sum)
{
    size_t n = n_members + n_nonmembers;
    double *a = malloc(sizeof *a * (n ? n : 1)), *b = a + n_members;
    if (!a)
        return lethe_fail(LETHE_ERR_NOMEM, "out of memory");
    for (size_t i = 0; i < n_members; i++)
        a[i] = members[i].score[attack];
    for (size_t i = 0; i < n_nonmembers; i++)
        b[i] = nonmembers[i].score[attack];
    lethe_roc_result roc;
    lethe_status st = lethe_lm_mia_roc(a, n_members, b, n_nonmembers, &roc);
    free(a);
    if (st) {
        char w[64];
        snprintf(w, sizeof w, "the %s attack", lethe_lm_mia_name(attack));
        return st == LETHE_ERR_NOMEM ? st : at(st, w);
    }
    char key[64];
    snprintf(key, sizeof key, "mia_%s", lethe_lm_mia_name(attack));
    cJSON *e = cJSON_AddObjectToObject(eval, key);
    add_num(e, "agg_value", roc.auc);
    add_num(e, "auc", roc.auc);
    add_num(e, "tpr_at_1fpr", roc.tpr_at_1fpr);
    add_num(e, "tpr_at_5fpr", roc.tpr_at_5fpr);
    cJSON_AddItemToObject(e, "forget", per_text(members, n_members, attack));
    cJSON_AddItemToObject(e, "holdout", per_text(nonmembers, n_nonmembers, attack));
    add_num(sum, key, roc.auc);
    snprintf(key, sizeof key, "mia_%s_tpr_at_1fpr", lethe_lm_mia_name(attack));
    add_num(sum, key, roc.tpr_at_1fpr);
    snprintf(key, sizeof key, "mia_%s_tpr_at_5fpr", lethe_lm_mia_name(attack));
    add_num(sum, key, roc.tpr_at_5fpr);
    return LETHE_OK;
}

static lethe_status side_scores(const lethe_lm_mia_run_cfg *c, const lethe_gpt_dir *m,
                                const lethe_gpt_dir *r, side *s)
{
    lethe_status st = lethe_lm_mia_scores(m->model, r ? r->model : NULL, m->tok,
                                          (int32_t)m->eot, (const char *const *)s->texts, s->n,
                                          c->k, c->batch, s->sc);
    if (!st && !c->no_gradnorm)
        st = lethe_lm_mia_gradnorm(m->model, m->tok, (int32_t)m->eot,
                                   (const char *const *)s->texts, s->n, s->sc);
    if (st && st != LETHE_ERR_NOMEM)
        st = at(st, s->path);
    return st;
}

lethe_status lethe_lm_mia_run(const lethe_lm_mia_run_cfg *c, cJSON **summary)
{
    if (summary)
        *summary = NULL;
    if (!c->run || !c->members || !c->nonmembers)
        return lethe_fail(LETHE_ERR_INVALID, "a membership-inference evaluation needs a run, "
                          "members and non-members");
    if (!(c->k > 0 && c->k <= 1))
        return lethe_fail(LETHE_ERR_INVALID, "the Min-K%% fraction must be in (0, 1], got %g",
                          c->k);
    lethe_gpt_dir m = {0}, r = {0};
    side sides[2] = {{0}};
    cJSON *eval = NULL, *sum = NULL;
    lethe_status st = lethe_gpt_dir_load(c->run, 1, &m);
    if (!st && !m.tok)
        st = lethe_fail(LETHE_ERR_FORMAT, "%s: the attacks need the run's tokenizer", c->run);
    if (!st && c->ref && !(st = lethe_gpt_dir_load(c->ref, 1, &r)))
        st = lethe_lm_mia_ref_check(&m, c->run, &r, c->ref);
    int P = m.model ? m.model->cfg.n_positions : 0;
    if (r.model && r.model->cfg.n_positions < P)
        P = r.model->cfg.n_positions;
    if (!st)
        st = side_read(&sides[0], c->members, &m, P, c->fit);
    if (!st)
        st = side_read(&sides[1], c->nonmembers, &m, P, c->fit);
    for (int s = 0; s < 2 && !st; s++)
        st = side_scores(c, &m, c->ref ? &r : NULL, &sides[s]);
    if (!st) {
        eval = cJSON_CreateObject();
        sum = cJSON_CreateObject();
        if (!eval || !sum)
            st = lethe_fail(LETHE_ERR_NOMEM, "out of memory");
    }
    if (!st) {
        cJSON_AddStringToObject(sum, "members", c->members);
        cJSON_AddStringToObject(sum, "nonmembers", c->nonmembers);
        if (c->ref)
            cJSON_AddStringToObject(sum, "ref", c->ref);
        else
            cJSON_AddNullToObject(sum, "ref");
        cJSON_AddNumberToObject(sum, "k", c->k);
        cJSON_AddNumberToObject(sum, "n_forget", (double)sides[0].n);
        cJSON_AddNumberToObject(sum, "n_holdout", (double)sides[1].n);
        cJSON_AddBoolToObject(sum, "fit", c->fit);
        cJSON_AddNumberToObject(sum, "texts_cut", sides[0].n_cut + sides[1].n_cut);
    }
    for (int k = 0; !st && k < LETHE_MIA_N_ATTACKS; k++)
        if ((k != LETHE_MIA_REFERENCE || c->ref) && (k != LETHE_MIA_GRADNORM || !c->no_gradnorm))
            st = lethe_lm_mia_report(sides[0].sc, sides[0].n, sides[1].sc, sides[1].n, k, eval,
                                     sum);
    for (int w = -1; !st && w >= -2; w--) {
        const char *key = w == -1 ? "exact_memorization" : "extraction_strength";
        cJSON *e = cJSON_AddObjectToObject(eval, key), *f = per_text(sides[0].sc, sides[0].n, w);
        add_num(e, "agg_value", cJSON_GetObjectItem(f, "agg_value")->valuedouble);
        cJSON_AddItemToObject(e, "forget", f);
        cJSON_AddItemToObject(e, "holdout", per_text(sides[1].sc, sides[1].n, w));
        add_num(sum, key, cJSON_GetObjectItem(f, "agg_value")->valuedouble);
    }
    const char *dir = c->out ? c->out : c->run;
    if (!st)
        st = lethe_run_mkdir(dir);
    if (!st)
        st = lethe_json_write(dir, "MIA_EVAL.json", eval);
    if (!st)
        st = lethe_json_write(dir, "MIA_SUMMARY.json", sum);
    cJSON_Delete(eval);
    if (!st && summary) {
        *summary = sum;
        sum = NULL;
    }
    cJSON_Delete(sum);
    for (int s = 0; s < 2; s++)
        side_free(&sides[s]);
    lethe_gpt_dir_free(&m);
    lethe_gpt_dir_free(&r);
    return st;
}
