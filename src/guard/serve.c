/* Serving a model behind a guard (lethe/guard_serve.h). */
#include <math.h>
#include <stdlib.h>
#include <string.h>

#include "fit_text.h"
#include "lethe/guard_fit.h"
#include "lethe/guard_serve.h"

#define MAX_MATCHES 64 /* prompt matches whose targets are forbidden */

struct lethe_guard_serve {
    const lethe_gpt *g;
    const lethe_tokenizer_t *tok;
    lethe_guard_t *gd;
    lethe_guard_serve_cfg cfg;
    lethe_guard_clf *clf; /* NULL: flag on matches alone */
    lethe_guard_feat feat;
};

lethe_status lethe_guard_mode_parse(const char *s, lethe_guard_mode *m)
{
    if (!strcmp(s, "guard") || !strcmp(s, "eco")) {
        *m = *s == 'g' ? LETHE_GUARD_MODE_GUARD : LETHE_GUARD_MODE_ECO;
        return LETHE_OK;
    }
    if (!strcmp(s, "alu"))
        return lethe_fail(LETHE_ERR_UNSUPPORTED, "guard mode alu answers over a chat endpoint "
                          "(lethe generate --mode alu --endpoint URL), not from a model here");
    return lethe_fail(LETHE_ERR_INVALID, "unknown guard mode '%s' (guard or eco)", s);
}

void lethe_guard_serve_defaults(lethe_guard_serve_cfg *c)
{
    *c = (lethe_guard_serve_cfg){.mode = LETHE_GUARD_MODE_GUARD, .k = 3, .answer_words = 3,
                                 .plain_beam = 1};
    lethe_eco_defaults(&c->eco);
    lethe_guard_forbid_defaults(&c->forbid);
    lethe_guard_decode_defaults(&c->decode);
}

lethe_status lethe_guard_serve_new(const lethe_gpt *g, const lethe_tokenizer_t *tok,
                                   lethe_guard_t *gd, const lethe_guard_serve_cfg *cfg,
                                   lethe_guard_serve_t **out)
{
    *out = NULL;
    if (!g || !tok || !gd)
        return lethe_fail(LETHE_ERR_INVALID, "guard: serving needs a model, its tokenizer and "
                          "a guard");
    char hash[72];
    lethe_guard_hash_gpt(g, hash);
    if (strcmp(hash, lethe_guard_model_hash(gd)))
        return lethe_fail(LETHE_ERR_FORMAT, "guard: made for model %s, not this one (%s)",
                          lethe_guard_model_hash(gd), hash);
    lethe_guard_serve_t *s = calloc(1, sizeof *s);
    if (!s)
        return lethe_fail(LETHE_ERR_NOMEM, "guard: out of memory");
    s->g = g, s->tok = tok, s->gd = gd;
    if (cfg)
        s->cfg = *cfg;
    else
        lethe_guard_serve_defaults(&s->cfg);
    size_t len;
    const unsigned char *blob = lethe_guard_classifier(gd, &len);
    lethe_status st = LETHE_OK;
    if (blob && (st = lethe_guard_clf_load(blob, len, &s->clf)) == LETHE_OK &&
        lethe_guard_clf_bind(s->clf, g, tok, hash, &s->feat) != LETHE_OK)
        st = lethe_fail(LETHE_ERR_FORMAT, "guard: its classifier does not fit this model (%s)",
                        lethe_error_detail());
    if (st != LETHE_OK) {
        lethe_guard_serve_free(s);
        return st;
    }
    *out = s;
    return LETHE_OK;
}

void lethe_guard_serve_free(lethe_guard_serve_t *s)
{
    if (!s)
        return;
    lethe_guard_clf_free(s->clf);
    free(s);
}

void lethe_guard_serve_result_free(lethe_guard_serve_result *r)
{
    if (r)
        lethe_guard_decode_result_free(&r->out);
}

/* Insert id into the ascending set r->targets (full: dropped). */
static void add_target(lethe_guard_serve_result *r, uint32_t id)
{
    size_t i = 0;
    while (i < r->n_targets && r->targets[i] < id)
        i++;
    if ((i < r->n_targets && r->targets[i] == id) || r->n_targets == LETHE_GUARD_SERVE_MAX_TARGETS)
        return;
    memmove(r->targets + i + 1, r->targets + i, (r->n_targets - i) * sizeof *r->targets);
    r->targets[i] = id;
    r->n_targets++;
}

/* The index of target id (targets are in increasing id order), or -1. */
static long target_index(const lethe_guard_t *gd, uint32_t id)
{
    size_t lo = 0, hi = lethe_guard_target_count(gd);
    while (lo < hi) {
        size_t mid = lo + (hi - lo) / 2;
        lethe_guard_target_info t;
        lethe_guard_target_get(gd, mid, &t);
        if (t.id == id)
            return (long)mid;
        if (t.id < id)
            lo = mid + 1;
        else
            hi = mid;
    }
    return -1;
}

/* " " + normalised text + " ", NUL-terminated, in a new buffer. */
static char *padded(const char *t, size_t len)
{
    char *b = malloc(len + 3);
    if (!b)
        return NULL;
    size_t n = lethe_guard_normalize(t, len, (unsigned char *)b + 1);
    b[0] = ' ', b[n + 1] = ' ', b[n + 2] = 0;
    return b;
}

/* The forbidden n-grams of the result's targets that the prompt (padded)
 * does not hold, into a new list (pointers owned by the guard). */
static lethe_status collect(const lethe_guard_t *gd, const char *prompt,
                            lethe_guard_serve_result *r, const char ***list, size_t *n)
{
    size_t cap = 0;
    for (size_t i = 0; i < r->n_targets; i++) {
        long at = target_index(gd, r->targets[i]);
        lethe_guard_target_info t;
        if (at >= 0) {
            lethe_guard_target_get(gd, (size_t)at, &t);
            cap += t.n_ngrams;
        }
    }
    *n = 0;
    *list = malloc(sizeof **list * (cap ? cap : 1));
    if (!*list)
        return lethe_fail(LETHE_ERR_NOMEM, "guard: out of memory");
    for (size_t i = 0; i < r->n_targets; i++) {
        long at = target_index(gd, r->targets[i]);
        if (at < 0)
            continue;
        lethe_guard_target_info t;
        lethe_guard_target_get(gd, (size_t)at, &t);
        for (size_t k = 0; k < t.n_ngrams; k++) {
            char *p = padded(t.ngrams[k], strlen(t.ngrams[k]));
            if (!p)
                return lethe_fail(LETHE_ERR_NOMEM, "guard: out of memory");
            if (!strstr(prompt, p))
                (*list)[(*n)++] = t.ngrams[k];
            free(p);
        }
    }
    return LETHE_OK;
}

/* The words of answer text a that the prompt (padded) does not hold, 3
 * bytes or more and not stopwords, appended to *list as new strings (their
 * count added to *owned, which the caller frees from the list's end). */
static lethe_status answer_words(const char *a, const char *prompt, const char ***list, size_t *n,
                                 size_t *owned)
{
    fit_word *w;
    size_t nw = fit_split(a, &w);
    if (nw == (size_t)-1)
        return lethe_fail(LETHE_ERR_NOMEM, "guard: out of memory");
    const char **l = realloc(*list, sizeof *l * (*n + nw + 1));
    lethe_status st = l ? LETHE_OK : lethe_fail(LETHE_ERR_NOMEM, "guard: out of memory");
    if (l)
        *list = l;
    for (size_t i = 0; i < nw && st == LETHE_OK; i++) {
        size_t len = w[i].e - w[i].s;
        if (len < 3 || !fit_has_content(a, w, i, 1))
            continue;
        char *word = strndup(a + w[i].s, len), *p = word ? padded(word, len) : NULL;
        if (!p) {
            free(word);
            st = lethe_fail(LETHE_ERR_NOMEM, "guard: out of memory");
        } else if (strstr(prompt, p)) {
            free(word);
        } else {
            l[(*n)++] = word;
            ++*owned;
        }
        free(p);
    }
    free(w);
    return st;
}

static lethe_status classify(const lethe_guard_serve_t *s, const char *prompt, size_t len,
                             const int32_t *ids, size_t n, lethe_guard_serve_result *r)
{
    r->score = NAN;
    if (!s->clf)
        return LETHE_OK;
    float *x = malloc(sizeof *x * (size_t)s->feat.dim);
    if (!x)
        return lethe_fail(LETHE_ERR_NOMEM, "guard: out of memory");
    lethe_status st = s->feat.kind == LETHE_GUARD_FEAT_MODEL
                          ? lethe_guard_features_tokens(&s->feat, NULL, ids, n, x)
                          : lethe_guard_features(&s->feat, prompt, len, x);
    if (st == LETHE_OK) {
        r->score = lethe_guard_clf_score(s->clf, x);
        r->flagged = lethe_guard_clf_flags(s->clf, r->score);
    }
    free(x);
    return st;
}

/* The prompt's tokens into a new *ids. */
static lethe_status encode(const lethe_guard_serve_t *s, const char *prompt, size_t len,
                           int32_t **ids, size_t *n)
{
    uint32_t *u = NULL;
    lethe_status st = lethe_tokenizer_encode(s->tok, prompt, len, &u, n);
    if (st != LETHE_OK)
        return st;
    if (!*n || *n > (size_t)s->g->cfg.n_positions) {
        free(u);
        return lethe_fail(LETHE_ERR_INVALID, "guard: a prompt of %zu tokens (1 to %d allowed)",
                          *n, s->g->cfg.n_positions);
    }
    *ids = malloc(sizeof **ids * *n);
    for (size_t i = 0; *ids && i < *n; i++)
        (*ids)[i] = (int32_t)u[i];
    free(u);
    return *ids ? LETHE_OK : lethe_fail(LETHE_ERR_NOMEM, "guard: out of memory");
}

/* ECO's embedding hook: corrupt the selected prompt positions. */
typedef struct eco_hook {
    const lethe_eco_cfg *cfg;
    const unsigned char *mask;
    int n;
} eco_hook;

static void eco_embed(void *ctx, int pos0, int n, const int32_t *tokens, float *emb, int C)
{
    (void)tokens;
    const eco_hook *h = ctx;
    for (int i = 0; i < n; i++)
        if (pos0 + i < h->n && h->mask[pos0 + i])
            lethe_eco_corrupt_row(h->cfg, emb + (size_t)i * (size_t)C, C, pos0 + i);
}

/* ECO's answer to a flagged prompt: the names of the result's targets pick
 * the positions; greedy (or plain_beam) decoding with them corrupted. */
static lethe_status eco_answer(const lethe_guard_serve_t *s, const char *prompt, size_t len,
                               const int32_t *ids, size_t n, int max_new, int32_t eos,
                               lethe_guard_serve_result *res)
{
    size_t cap = 0;
    for (size_t i = 0; i < res->n_targets; i++) {
        long at = target_index(s->gd, res->targets[i]);
        lethe_guard_target_info t;
        if (at >= 0) {
            lethe_guard_target_get(s->gd, (size_t)at, &t);
            cap += 1 + t.n_aliases;
        }
    }
    const char **nm = malloc(sizeof *nm * (cap ? cap : 1));
    unsigned char *mask = malloc(n);
    lethe_status st = nm && mask ? LETHE_OK : lethe_fail(LETHE_ERR_NOMEM, "guard: out of memory");
    size_t k = 0;
    for (size_t i = 0; i < res->n_targets && st == LETHE_OK; i++) {
        long at = target_index(s->gd, res->targets[i]);
        if (at < 0)
            continue;
        lethe_guard_target_info t;
        lethe_guard_target_get(s->gd, (size_t)at, &t);
        nm[k++] = t.name;
        for (size_t a = 0; a < t.n_aliases; a++)
            nm[k++] = t.aliases[a];
    }
    /* positions are found in the bytes of the ids themselves: the prompt
     * text of lethe_guard_serve_generate_ids need not be their decoding */
    unsigned char *bytes = NULL;
    size_t nb = 0;
    (void)prompt, (void)len;
    if (st == LETHE_OK)
        st = lethe_tokenizer_decode(s->tok, (const uint32_t *)ids, n, &bytes, &nb);
    if (st == LETHE_OK)
        st = lethe_guard_eco_select(s->tok, ids, n, (const char *)bytes, nb, nm, k, mask,
                                    &res->corrupted);
    free(bytes);
    eco_hook h = {&s->cfg.eco, mask, (int)n};
    lethe_gen_opts o;
    lethe_gen_defaults(&o);
    o.max_new = max_new, o.eos = eos, o.beam = s->cfg.plain_beam;
    o.length_norm = s->cfg.decode.length_norm;
    o.embed_hook = eco_embed, o.embed_ctx = &h;
    lethe_gen_result r = {0};
    if (st == LETHE_OK)
        st = lethe_gpt_generate(s->g, ids, (int)n, &o, &r);
    lethe_guard_decode_result *out = &res->out;
    if (st == LETHE_OK) {
        int m = r.n > 0 && r.tokens[r.n - 1] == eos ? r.n - 1 : r.n;
        unsigned char *text = NULL;
        size_t tl = 0;
        st = lethe_tokenizer_decode(s->tok, (const uint32_t *)r.tokens, (size_t)m, &text, &tl);
        out->tokens = r.tokens, out->logprobs = r.logprobs, out->n = r.n;
        out->score = out->logprob = r.score, out->stop = r.stop;
        out->text = (char *)text, out->text_len = tl;
        r.tokens = NULL, r.logprobs = NULL;
    }
    lethe_gen_result_free(&r);
    free(mask);
    free(nm);
    return st;
}

/* Answer from ids[0..n) (owned: freed here) with prompt[0..len) the text
 * the detector reads; pids[0..pn) its tokens (the classifier's). */
/* Step 1: the classifier's score and the automaton's matches (m[0..*nm))
 * into res, and whether the prompt is flagged. */
static lethe_status detect(const lethe_guard_serve_t *s, const char *prompt, size_t len,
                           const int32_t *pids, size_t pn, lethe_guard_match *m, size_t *nm,
                           lethe_guard_serve_result *res)
{
    *nm = 0;
    lethe_status st = classify(s, prompt, len, pids, pn, res);
    if (st == LETHE_OK)
        st = lethe_guard_ac_find(lethe_guard_automaton(s->gd), prompt, len, m, MAX_MATCHES, nm);
    res->matches = *nm;
    res->flagged |= *nm > 0;
    return st;
}

lethe_status lethe_guard_serve_flag(const lethe_guard_serve_t *s, const char *prompt, size_t len,
                                    lethe_guard_serve_result *res)
{
    memset(res, 0, sizeof *res);
    int32_t *ids = NULL;
    size_t n = 0;
    lethe_status st = encode(s, prompt, len, &ids, &n);
    lethe_guard_match m[MAX_MATCHES];
    size_t nm;
    if (st == LETHE_OK)
        st = detect(s, prompt, len, ids, n, m, &nm, res);
    free(ids);
    return st;
}

const lethe_guard_serve_cfg *lethe_guard_serve_config(const lethe_guard_serve_t *s)
{
    return &s->cfg;
}

static lethe_status serve(const lethe_guard_serve_t *s, const char *prompt, size_t len,
                          const int32_t *pids, size_t pn, int32_t *ids, size_t n, int max_new,
                          int32_t eos, lethe_guard_serve_result *res)
{
    size_t nm = 0, na = 0;
    lethe_guard_match m[MAX_MATCHES];
    lethe_status st = detect(s, prompt, len, pids, pn, m, &nm, res);
    lethe_guard_decode_opts o = s->cfg.decode;
    o.max_new = max_new, o.eos = eos;
    if (st != LETHE_OK || !res->flagged) {
        o.beam = s->cfg.plain_beam;
        if (st == LETHE_OK)
            st = lethe_guard_decode(s->g, s->tok, NULL, ids, (int)n, &o, &res->out);
        free(ids);
        return st;
    }
    for (size_t i = 0; i < nm && i < MAX_MATCHES; i++)
        add_target(res, m[i].id);
    size_t k = s->cfg.k, *idx = malloc(sizeof *idx * (k ? k : 1));
    if (!idx)
        st = lethe_fail(LETHE_ERR_NOMEM, "guard: out of memory");
    if (st == LETHE_OK && k)
        st = lethe_guard_retrieve(s->gd, prompt, len, k, idx, NULL, &na);
    for (size_t i = 0; i < na && st == LETHE_OK; i++) {
        uint32_t id;
        lethe_guard_answer(s->gd, idx[i], &id);
        add_target(res, id);
    }
    if (s->cfg.mode == LETHE_GUARD_MODE_ECO) {
        free(idx);
        if (st == LETHE_OK)
            st = eco_answer(s, prompt, len, ids, n, max_new, eos, res);
        free(ids);
        return st;
    }
    char *p = st == LETHE_OK ? padded(prompt, len) : NULL;
    if (st == LETHE_OK && !p)
        st = lethe_fail(LETHE_ERR_NOMEM, "guard: out of memory");
    const char **list = NULL;
    size_t owned = 0; /* the last `owned` entries of list are ours */
    lethe_guard_forbid_t *f = NULL;
    if (st == LETHE_OK)
        st = collect(s->gd, p, res, &list, &res->forbidden);
    for (size_t i = 0; i < na && i < s->cfg.answer_words && st == LETHE_OK; i++)
        st = answer_words(lethe_guard_answer(s->gd, idx[i], NULL), p, &list, &res->forbidden,
                          &owned);
    free(idx);
    if (st == LETHE_OK)
        st = lethe_guard_forbid_new(s->g, s->tok, list, res->forbidden, list, res->forbidden,
                                    &s->cfg.forbid, &f);
    if (st == LETHE_OK)
        st = lethe_guard_decode(s->g, s->tok, f, ids, (int)n, &o, &res->out);
    lethe_guard_forbid_free(f);
    for (size_t i = 0; i < owned; i++)
        free((char *)list[res->forbidden - 1 - i]);
    free(list);
    free(p);
    free(ids);
    return st;
}

lethe_status lethe_guard_serve_generate(const lethe_guard_serve_t *s, const char *prompt,
                                        size_t len, int max_new, int32_t eos,
                                        lethe_guard_serve_result *res)
{
    memset(res, 0, sizeof *res);
    int32_t *ids = NULL;
    size_t n = 0;
    lethe_status st = encode(s, prompt, len, &ids, &n);
    return st == LETHE_OK ? serve(s, prompt, len, ids, n, ids, n, max_new, eos, res) : st;
}

lethe_status lethe_guard_serve_generate_ids(const lethe_guard_serve_t *s, const char *prompt,
                                            size_t len, const int32_t *ids, size_t n,
                                            int max_new, int32_t eos,
                                            lethe_guard_serve_result *res)
{
    memset(res, 0, sizeof *res);
    if (!n || n > (size_t)s->g->cfg.n_positions)
        return lethe_fail(LETHE_ERR_INVALID, "guard: a prompt of %zu tokens (1 to %d allowed)",
                          n, s->g->cfg.n_positions);
    for (size_t i = 0; i < n; i++)
        if (ids[i] < 0 || ids[i] >= s->g->cfg.vocab_size)
            return lethe_fail(LETHE_ERR_INVALID, "guard: token %zu is %d (vocabulary %d)", i,
                              (int)ids[i], s->g->cfg.vocab_size);
    int32_t *pids = NULL, *own = malloc(sizeof *own * n);
    size_t pn = 0;
    if (!own)
        return lethe_fail(LETHE_ERR_NOMEM, "guard: out of memory");
    memcpy(own, ids, sizeof *own * n);
    lethe_status st = s->clf && s->feat.kind == LETHE_GUARD_FEAT_MODEL
                          ? encode(s, prompt, len, &pids, &pn)
                          : LETHE_OK;
    if (st != LETHE_OK) {
        free(own);
        return st;
    }
    st = serve(s, prompt, len, pids, pn, own, n, max_new, eos, res);
    free(pids);
    return st;
}

lethe_status lethe_guard_serve_open(const char *path, const lethe_gpt *g,
                                    const lethe_tokenizer_t *tok, const char *mode,
                                    const lethe_eco_cfg *eco, lethe_guard_t **gd,
                                    lethe_guard_serve_t **gs)
{
    *gd = NULL, *gs = NULL;
    lethe_guard_serve_cfg sc;
    lethe_guard_serve_defaults(&sc);
    if (eco)
        sc.eco = *eco;
    lethe_status st = lethe_guard_mode_parse(mode ? mode : "guard", &sc.mode);
    if (st == LETHE_OK)
        st = lethe_guard_load(path, gd);
    if (st == LETHE_OK && (st = lethe_guard_serve_new(g, tok, *gd, &sc, gs)) != LETHE_OK) {
        st = lethe_fail(st, "%s: %s", path, lethe_error_detail());
        lethe_guard_free(*gd);
        *gd = NULL;
    }
    return st;
}
