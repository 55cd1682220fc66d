/* Fitting a guard from forget and retain pairs (lethe/guard_fit.h). */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "fit_text.h"
#include "lethe/guard_fit.h"
#include "lethe/rng.h"
#include "lethe/sha256.h"

#define SPLIT_STREAM 0x67666974ull /* "gfit": the fit / calibration split */

void lethe_guard_hash_gpt(const lethe_gpt *g, char out[72])
{
    lethe_sha256 s;
    lethe_sha256_init(&s);
    const int32_t c[5] = {g->cfg.vocab_size, g->cfg.n_positions, g->cfg.n_embd,
                          g->cfg.n_layer, g->cfg.n_head};
    unsigned char b[20];
    for (int i = 0; i < 5; i++)
        for (int k = 0; k < 4; k++)
            b[4 * i + k] = (unsigned char)((uint32_t)c[i] >> (8 * k));
    lethe_sha256_update(&s, b, sizeof b);
    for (long i = 0; i < g->n_params; i++) {
        uint32_t u;
        memcpy(&u, &g->params[i], 4);
        unsigned char le[4] = {(unsigned char)u, (unsigned char)(u >> 8),
                               (unsigned char)(u >> 16), (unsigned char)(u >> 24)};
        lethe_sha256_update(&s, le, 4);
    }
    memcpy(out, "sha256:", 7);
    lethe_sha256_final(&s, out + 7);
}

void lethe_guard_fit_defaults(lethe_guard_fit_cfg *cfg)
{
    *cfg = (lethe_guard_fit_cfg){.max_n = LETHE_GUARD_NGRAM_MAX, .alpha = 0.01,
                                 .calib_share = 0.5, .layer = -1, .C = 1.0};
}

static lethe_status nomem(void)
{
    return lethe_fail(LETHE_ERR_NOMEM, "guard fit: out of memory");
}

/* The words of target i's name and aliases (their 1-gram hashes) into
 * w[i], and the name and aliases as the target's first n-grams. */
static lethe_status name_words(lethe_guard_t *g, size_t i, fit_set *w, fit_set *seen)
{
    lethe_guard_target_info t;
    lethe_guard_target_get(g, i, &t);
    lethe_status st = LETHE_OK;
    for (size_t k = 0; k <= t.n_aliases && st == LETHE_OK; k++) {
        const char *s = k ? t.aliases[k - 1] : t.name;
        fit_word *ws;
        size_t n = fit_split(s, &ws);
        if (n == (size_t)-1)
            return nomem();
        for (size_t j = 0; j < n && st == LETHE_OK; j++)
            if (fit_set_add(w, fit_ngram_hash(s, ws, j, 1)) < 0)
                st = nomem();
        int fresh = st == LETHE_OK ? fit_set_add(seen, fit_ngram_hash(s, ws, 0, n) ^
                                                            ((uint64_t)t.id * 0x9e3779b97f4a7c15ull))
                                   : 0;
        free(ws);
        if (fresh < 0)
            st = nomem();
        else if (fresh)
            st = lethe_guard_add_ngram(g, t.id, s);
    }
    return st;
}

/* The minimal distinctive n-grams of answer a for target id that hold no
 * word of the target's own name (`own`), deduplicated through `seen`
 * (keyed by n-gram and target). */
static lethe_status add_ngrams(lethe_guard_t *g, uint32_t id, const char *a, const fit_set *r,
                               const fit_set *own, int max_n, fit_set *seen)
{
    fit_word *w;
    size_t n = fit_split(a, &w);
    if (n == (size_t)-1)
        return nomem();
    /* d[k * n + i]: words i .. i + k form a distinctive (k + 1)-gram;
     * name[i]: word i is a word of the target's name */
    unsigned char *d = calloc((size_t)max_n * (n ? n : 1), 1), *name = calloc(n ? n : 1, 1);
    lethe_status st = d && name ? LETHE_OK : nomem();
    for (size_t i = 0; i < n && st == LETHE_OK; i++)
        name[i] = (unsigned char)fit_set_has(own, fit_ngram_hash(a, w, i, 1));
    for (int k = 0; k < max_n && st == LETHE_OK; k++) {
        for (size_t i = 0; i + (size_t)k < n && st == LETHE_OK; i++) {
            uint64_t h = fit_ngram_hash(a, w, i, (size_t)k + 1);
            if (fit_set_has(r, h) || !fit_has_content(a, w, i, (size_t)k + 1))
                continue;
            d[(size_t)k * n + i] = 1;
            if (k && (d[(size_t)(k - 1) * n + i] || d[(size_t)(k - 1) * n + i + 1]))
                continue; /* holds a shorter one */
            int named = 0;
            for (size_t j = i; j <= i + (size_t)k; j++)
                named |= name[j];
            if (named)
                continue; /* the name is forbidden as a whole, not in pieces */
            int fresh = fit_set_add(seen, h ^ ((uint64_t)id * 0x9e3779b97f4a7c15ull));
            if (fresh < 0) {
                st = nomem();
                break;
            }
            if (!fresh)
                continue;
            char *text = strndup(a + w[i].s, w[i + (size_t)k].e - w[i].s);
            st = text ? lethe_guard_add_ngram(g, id, text) : nomem();
            free(text);
        }
    }
    free(name);
    free(d);
    free(w);
    return st;
}

/* The target a pair is about: the first match in its question, else in its
 * answer; *found 0 when it names none. */
static lethe_status pair_target(lethe_guard_t *g, const char *q, const char *a, uint32_t *id,
                                unsigned char *found)
{
    lethe_guard_ac_t *ac = lethe_guard_automaton(g);
    lethe_guard_match m;
    size_t nm = 0;
    *id = 0;
    lethe_status st = lethe_guard_ac_find(ac, q, strlen(q), &m, 1, &nm);
    if (st == LETHE_OK && !nm)
        st = lethe_guard_ac_find(ac, a, strlen(a), &m, 1, &nm);
    *found = st == LETHE_OK && nm;
    if (*found)
        *id = m.id;
    return st;
}

static lethe_status add_targets(lethe_guard_t *g, const lethe_guard_fit_data *d, const fit_set *r,
                                lethe_guard_fit_summary *sum)
{
    if (!d->targets) {
        sum->derived = 1;
        lethe_status st = fit_derive_targets(g, d->forget_q, d->n_forget, r, &sum->targets);
        if (st == LETHE_OK && !sum->targets)
            st = lethe_fail(LETHE_ERR_INVALID, "guard fit: no target name found in the forget "
                            "questions (a name is 2 to 4 capitalised words in two questions "
                            "or more, never in the retain text); give the targets instead");
        return st;
    }
    for (size_t i = 0; i < d->n_targets; i++) {
        const lethe_guard_target_spec *t = &d->targets[i];
        lethe_status st = lethe_guard_add_target(g, t->name, t->aliases, t->n_aliases, NULL);
        if (st != LETHE_OK)
            return st;
    }
    sum->targets = d->n_targets;
    return LETHE_OK;
}

/* Which retain prompts calibrate: a keyed coin per index. */
static int calibrates(const lethe_guard_fit_cfg *c, size_t i)
{
    double u = (double)(lethe_rng_hash(c->seed, SPLIT_STREAM, i) >> 11) * 0x1p-53;
    return u < c->calib_share;
}

static const char *prompt_of(const char *const *p, const char *const *q, size_t i)
{
    return p && p[i] ? p[i] : q[i];
}

/* MODEL features of texts[0..n) into X (n x dim), the prompts spread over
 * threads (each forward runs on one; its bits do not depend on it). */
static lethe_status model_rows(const lethe_guard_feat *f, const char *const *texts, size_t n,
                               float *X)
{
    lethe_status first = LETHE_OK;
    long first_i = -1;
    char detail[1024] = "";
#pragma omp parallel for schedule(dynamic, 4)
    for (long i = 0; i < (long)n; i++) {
        lethe_status st = lethe_guard_features(f, texts[i], strlen(texts[i]),
                                               X + (size_t)i * (size_t)f->dim);
#pragma omp critical
        if (st && (first_i < 0 || i < first_i)) {
            first = st, first_i = i;
            snprintf(detail, sizeof detail, "%s", lethe_error_detail());
        }
    }
    return first ? lethe_fail(first, "guard fit: prompt %ld: %s", first_i, detail) : LETHE_OK;
}

/* Fit and calibrate the classifier; its bytes into the guard. Prompt i is
 * forget prompt i for i < n_forget, then retain prompt i - n_forget. */
static lethe_status fit_classifier(lethe_guard_t *gd, const lethe_gpt *g,
                                   const lethe_tokenizer_t *tok, const lethe_guard_fit_data *d,
                                   const lethe_guard_fit_cfg *c, const char *hash,
                                   lethe_guard_fit_summary *sum)
{
    lethe_guard_feat f;
    lethe_status st = c->hash_features ? lethe_guard_feat_hash(LETHE_GUARD_HASH_DIM, &f)
                                       : lethe_guard_feat_model(g, tok, c->layer, &f);
    if (st != LETHE_OK)
        return st;
    size_t nf = d->n_forget, n_all = nf + d->n_retain, dim = (size_t)f.dim;
    const char **text = malloc(sizeof *text * n_all);
    float *X = c->hash_features ? NULL : malloc(sizeof *X * dim * n_all);
    float *row = malloc(sizeof *row * dim);
    int *y = malloc(sizeof *y * n_all);
    double *cal = malloc(sizeof *cal * d->n_retain);
    lethe_guard_rows_t *x = lethe_guard_rows_new(f.dim);
    lethe_guard_clf *clf = NULL;
    unsigned char *blob = NULL;
    size_t n = 0, n_cal = 0, blob_len = 0;
    if (!text || (!c->hash_features && !X) || !row || !y || !cal || !x)
        st = nomem();
    for (size_t i = 0; i < n_all && st == LETHE_OK; i++)
        text[i] = i < nf ? prompt_of(d->forget_prompt, d->forget_q, i)
                         : prompt_of(d->retain_prompt, d->retain_q, i - nf);
    if (st == LETHE_OK && X)
        st = model_rows(&f, text, n_all, X);
    /* the fit rows: every forget prompt, the retain prompts not calibrating */
    for (size_t i = 0; i < n_all && st == LETHE_OK; i++) {
        if (i >= nf && calibrates(c, i - nf))
            continue;
        st = X ? lethe_guard_rows_add(x, X + i * dim)
               : lethe_guard_rows_add_text(x, &f, text[i], strlen(text[i]));
        y[n++] = i < nf;
    }
    sum->fit_neg = n - nf;
    lethe_guard_clf_cfg cc;
    lethe_guard_clf_defaults(&cc);
    cc.C = c->C;
    cc.model_hash = c->hash_features ? NULL : hash;
    if (st == LETHE_OK && !sum->fit_neg)
        st = lethe_fail(LETHE_ERR_INVALID, "guard fit: every retain prompt went to calibration "
                        "(%zu prompts, calibration share %g)", d->n_retain, c->calib_share);
    if (st == LETHE_OK)
        st = lethe_guard_clf_fit(&f, x, y, &cc, &clf, &sum->clf);
    for (size_t i = nf; i < n_all && st == LETHE_OK; i++) {
        if (!calibrates(c, i - nf))
            continue;
        if (X)
            cal[n_cal++] = lethe_guard_clf_score(clf, X + i * dim);
        else
            st = lethe_guard_clf_score_text(clf, &f, text[i], strlen(text[i]), &cal[n_cal++],
                                            NULL);
    }
    sum->calib_neg = n_cal;
    if (st == LETHE_OK && !n_cal)
        st = lethe_fail(LETHE_ERR_INVALID, "guard fit: no retain prompt went to calibration "
                        "(%zu prompts, calibration share %g)", d->n_retain, c->calib_share);
    if (st == LETHE_OK)
        st = lethe_guard_clf_calibrate(clf, cal, n_cal, c->alpha);
    if (st == LETHE_OK) {
        size_t pos = 0, neg = 0, cal_flag = 0;
        for (size_t i = 0; i < n; i++) {
            lethe_guard_rows_get(x, i, row);
            int fl = lethe_guard_clf_flags(clf, lethe_guard_clf_score(clf, row));
            *(y[i] ? &pos : &neg) += (size_t)fl;
        }
        for (size_t i = 0; i < n_cal; i++)
            cal_flag += (size_t)lethe_guard_clf_flags(clf, cal[i]);
        sum->tau = clf->tau;
        sum->tpr_forget = (double)pos / (double)nf;
        sum->fpr_fit = (double)neg / (double)sum->fit_neg;
        sum->fpr_calib = (double)cal_flag / (double)n_cal;
        st = lethe_guard_clf_save(clf, &blob, &blob_len);
    }
    if (st == LETHE_OK)
        st = lethe_guard_set_classifier(gd, blob, blob_len);
    free(blob);
    lethe_guard_clf_free(clf);
    lethe_guard_rows_free(x);
    free(cal);
    free(y);
    free(row);
    free(X);
    free(text);
    return st;
}

static lethe_status check(const lethe_gpt *g, const lethe_guard_fit_data *d,
                          const lethe_guard_fit_cfg *c)
{
    if (!g || !d)
        return lethe_fail(LETHE_ERR_INVALID, "guard fit: no model or no data");
    if (!d->n_forget || !d->forget_q || !d->forget_a)
        return lethe_fail(LETHE_ERR_INVALID, "guard fit: no forget pairs");
    if (!d->n_retain || !d->retain_q || !d->retain_a)
        return lethe_fail(LETHE_ERR_INVALID, "guard fit: no retain pairs");
    if (d->targets && !d->n_targets)
        return lethe_fail(LETHE_ERR_INVALID, "guard fit: an empty target list");
    if (d->forget_owner && !d->targets)
        return lethe_fail(LETHE_ERR_INVALID, "guard fit: forget pairs assigned without targets");
    for (size_t i = 0; d->forget_owner && i < d->n_forget; i++)
        if (d->forget_owner[i] != SIZE_MAX && d->forget_owner[i] >= d->n_targets)
            return lethe_fail(LETHE_ERR_INVALID, "guard fit: forget pair %zu assigned to target "
                              "%zu of %zu", i, d->forget_owner[i], d->n_targets);
    if (c->max_n < 1 || c->max_n > LETHE_GUARD_NGRAM_MAX)
        return lethe_fail(LETHE_ERR_INVALID, "guard fit: n-grams of at most %d words, not %d",
                          LETHE_GUARD_NGRAM_MAX, c->max_n);
    if (!(c->alpha > 0 && c->alpha < 1) || !(c->calib_share > 0 && c->calib_share < 1) ||
        !(c->C > 0))
        return lethe_fail(LETHE_ERR_INVALID, "guard fit: alpha and the calibration share must "
                          "be in (0, 1) and C above 0");
    return LETHE_OK;
}

lethe_status lethe_guard_fit(const lethe_gpt *g, const lethe_tokenizer_t *tok,
                             const lethe_guard_fit_data *d, const lethe_guard_fit_cfg *cfg,
                             lethe_guard_t **out, lethe_guard_fit_summary *sum)
{
    lethe_guard_fit_cfg c;
    lethe_guard_fit_summary s = {0};
    if (cfg)
        c = *cfg;
    else
        lethe_guard_fit_defaults(&c);
    *out = NULL;
    lethe_status st = check(g, d, &c);
    if (st != LETHE_OK)
        return st;
    char hash[72];
    lethe_guard_hash_gpt(g, hash);
    lethe_guard_t *gd = lethe_guard_new(hash, c.model_name, 0);
    fit_set r = {0}, seen = {0};
    if (!gd) /* the model name is checked first: anything else is memory */
        return c.model_name && strlen(c.model_name) > LETHE_GUARD_MAX_PATTERN
                   ? LETHE_ERR_INVALID
                   : LETHE_ERR_NOMEM;
    uint32_t *owner = malloc(sizeof *owner * d->n_forget);
    unsigned char *found = malloc(d->n_forget);
    if (!owner || !found)
        st = nomem();
    for (size_t i = 0; i < d->n_retain && st == LETHE_OK; i++) {
        st = fit_set_add_text(&r, d->retain_q[i]);
        if (st == LETHE_OK)
            st = fit_set_add_text(&r, d->retain_a[i]);
    }
    for (size_t i = 0; i < d->n_more_retain && st == LETHE_OK; i++)
        st = fit_set_add_text(&r, d->more_retain[i]);
    s.retain_ngrams = r.n;
    if (st == LETHE_OK)
        st = add_targets(gd, d, &r, &s);
    /* every pair is assigned while the automaton holds only names and
     * aliases, before any n-gram could claim a question */
    /* a fresh guard numbers its targets 0, 1, ...: target id is index id */
    for (size_t i = 0; i < d->n_forget && st == LETHE_OK; i++) {
        if (!d->forget_owner) {
            st = pair_target(gd, d->forget_q[i], d->forget_a[i], &owner[i], &found[i]);
            continue;
        }
        found[i] = d->forget_owner[i] != SIZE_MAX;
        owner[i] = found[i] ? (uint32_t)d->forget_owner[i] : 0;
    }
    size_t nt = st == LETHE_OK ? lethe_guard_target_count(gd) : 0;
    fit_set *own = calloc(nt ? nt : 1, sizeof *own);
    if (!own && st == LETHE_OK)
        st = nomem();
    for (size_t i = 0; i < nt && st == LETHE_OK && !d->forget_owner; i++)
        st = name_words(gd, i, &own[i], &seen);
    for (size_t i = 0; i < d->n_forget && st == LETHE_OK; i++) {
        if (!found[i]) {
            s.unassigned++;
            continue;
        }
        st = lethe_guard_add_answer(gd, owner[i], d->forget_a[i]);
        s.answers += st == LETHE_OK;
        if (st == LETHE_OK)
            st = add_ngrams(gd, owner[i], d->forget_a[i], &r, &own[owner[i]], c.max_n, &seen);
    }
    for (size_t i = 0; own && i < nt; i++) {
        lethe_guard_target_info t;
        lethe_guard_target_get(gd, i, &t);
        s.ngrams += t.n_ngrams;
        fit_set_free(&own[i]);
    }
    free(own);
    free(owner);
    free(found);
    if (st == LETHE_OK)
        st = fit_classifier(gd, g, tok, d, &c, hash, &s);
    fit_set_free(&r);
    fit_set_free(&seen);
    if (st != LETHE_OK) {
        lethe_guard_free(gd);
        return st;
    }
    *out = gd;
    if (sum)
        *sum = s;
    return LETHE_OK;
}
