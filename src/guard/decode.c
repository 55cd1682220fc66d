/* GUARD's constrained beam search (lethe/guard_decode.h).
 *
 * The search is lethe_gpt_generate's beam search step for step (src/nn/
 * gpt_generate.c: the same candidates, scores, order and stop rules), with
 * the forbidden set's checks (decode_check.c) run on each candidate before
 * the ranking, so that an empty set gives the same tokens. Each beam carries
 * a track of the checks' state, so judging one more token costs O(1) in the
 * length of the text. */
#include <math.h>
#include <stdlib.h>
#include <string.h>

#include "decode_impl.h"
/* lethe_vexpf: the log-softmax must be lethe_gpt_generate's to the bit, or an
 * unconstrained search could rank near-ties differently from it */
#include "../nn/vmath.h"

typedef struct beam {
    int32_t *seq;  /* (n_prompt + max_new) */
    float *lp;     /* (max_new) per new token */
    int len;       /* tokens in seq */
    double score;  /* sum of lp minus soft-match penalties: what ranks beams */
    double logprob;
    int stop;
    guard_track tr; /* the checks' state over the generated text */
} beam;

typedef struct cand {
    int beam, token;
    double score;
    float lp;
} cand;

typedef struct dec {
    const lethe_gpt *g;
    const lethe_tokenizer_t *tok;
    const lethe_guard_decode_opts *o;
    int n_prompt, W, V, npos;
    guard_checker chk;
    beam *h;         /* 3W: W alive, W next, W finished */
    lethe_gpt_kv **kv; /* 2W: alive and next */
    float *z;        /* (V) one beam's logits */
    cand *cands;     /* (W 2W) */
    int *top;        /* (2W) */
    lethe_guard_decode_result *res;
} dec;

/* ---- options and results ----------------------------------------------------- */

void lethe_guard_decode_defaults(lethe_guard_decode_opts *o)
{
    memset(o, 0, sizeof *o);
    o->beam = LETHE_GUARD_BEAM;
    o->max_new = 32;
    o->eos = -1;
    o->delta = LETHE_GUARD_DELTA;
    o->rules = LETHE_GUARD_RULE_ALL;
    o->refusal = LETHE_GUARD_REFUSAL;
}

void lethe_guard_decode_result_free(lethe_guard_decode_result *res)
{
    if (!res)
        return;
    free(res->tokens), free(res->logprobs), free(res->text);
    res->tokens = NULL, res->logprobs = NULL, res->text = NULL;
    res->n = 0, res->text_len = 0;
}

/* ---- log-softmax and candidates (as gpt_generate.c) -------------------------- */


/* The k largest finite logits' ids into top[], largest first, the lower id
 * first on ties (a full sort's order, found in one pass). Returns how many. */
static int top_tokens(const float *z, int V, int k, int *top)
{
    int n = 0;
    for (int v = 0; v < V; v++) {
        float x = z[v];
        if (!isfinite(x) || (n == k && !(x > z[top[n - 1]])))
            continue;
        int i = n < k ? n++ : k - 1;
        for (; i > 0 && z[top[i - 1]] < x; i--)
            top[i] = top[i - 1];
        top[i] = v;
    }
    return n;
}

static int by_score(const void *a, const void *b)
{
    const cand *x = a, *y = b;
    if (x->score != y->score)
        return x->score > y->score ? -1 : 1;
    if (x->beam != y->beam)
        return x->beam < y->beam ? -1 : 1;
    return (x->token > y->token) - (x->token < y->token);
}

/* ---- beams ------------------------------------------------------------------------ */

static void beam_copy(beam *dst, const beam *src, int n_lp)
{
    int32_t *seq = dst->seq;
    float *lp = dst->lp;
    memcpy(seq, src->seq, sizeof(int32_t) * (size_t)src->len);
    memcpy(lp, src->lp, sizeof(float) * (size_t)(n_lp > 0 ? n_lp : 0));
    guard_track tr = dst->tr;
    guard_track_copy(&tr, &src->tr);
    *dst = *src;
    dst->seq = seq, dst->lp = lp, dst->tr = tr;
}

/* Beam b's 2W most likely tokens, judged; the survivors go to cands[*nc..]. */
static lethe_status offer(dec *d, beam *b, int bi, const float *logits, int final, int *nc)
{
    const int V = d->V;
    float *z = d->z;
    memcpy(z, logits, sizeof(float) * (size_t)V);
    if (d->o->logits_hook)
        d->o->logits_hook(d->o->logits_ctx, z, V, b->seq, b->len, bi);
    double lse = lethe_vlogsumexp(z, V);
    if (!isfinite(lse))
        return lethe_fail(LETHE_ERR_INVALID, "guard decode: no finite logit left to choose from");
    int k = top_tokens(z, V, 2 * d->W, d->top);
    lethe_guard_decode_result *r = d->res;
    for (int i = 0; i < k; i++) {
        int t = d->top[i];
        unsigned rule;
        double penalty;
        lethe_status st = guard_judge(&d->chk, &b->tr, t, final, &rule, &penalty);
        if (st)
            return st;
        r->candidates++;
        r->pruned_trie += rule == LETHE_GUARD_RULE_TRIE;
        r->pruned_ac += rule == LETHE_GUARD_RULE_AC;
        r->pruned_soft += rule == LETHE_GUARD_RULE_SOFT;
        if (rule)
            continue;
        float lp = (float)((double)z[t] - lse);
        double score = b->score + lp;
        if (penalty > 0) /* only then: an unpenalised score keeps generate's bits */
            score -= penalty, r->penalized++;
        d->cands[(*nc)++] = (cand){bi, t, score, lp};
    }
    return LETHE_OK;
}

/* ---- the search --------------------------------------------------------------------- */

static lethe_status dec_alloc(dec *d)
{
    const int W = d->W;
    const size_t slots = 3 * (size_t)W, max_lp = d->o->max_new > 0 ? (size_t)d->o->max_new : 1;
    d->h = calloc(slots, sizeof *d->h);
    d->kv = calloc(2 * (size_t)W, sizeof *d->kv);
    d->z = malloc(sizeof(float) * (size_t)d->V);
    d->cands = malloc(sizeof(cand) * (size_t)W * 2 * (size_t)W);
    d->top = malloc(sizeof(int) * 2 * (size_t)W);
    if (!d->h || !d->kv || !d->z || !d->cands || !d->top)
        return lethe_fail(LETHE_ERR_NOMEM, "guard decode: out of memory for %d beams", W);
    for (size_t i = 0; i < slots; i++) {
        beam *b = &d->h[i];
        b->seq = malloc(sizeof(int32_t) * ((size_t)d->n_prompt + max_lp));
        b->lp = malloc(sizeof(float) * max_lp);
        if (!b->seq || !b->lp || guard_track_alloc(&d->chk, &b->tr))
            return lethe_fail(LETHE_ERR_NOMEM, "guard decode: out of memory for %d beams", W);
    }
    for (int i = 0; i < 2 * W; i++)
        if (!(d->kv[i] = lethe_gpt_kv_new(d->g)))
            return LETHE_ERR_NOMEM;
    return LETHE_OK;
}

static void dec_free(dec *d)
{
    for (int i = 0; d->h && i < 3 * d->W; i++)
        free(d->h[i].seq), free(d->h[i].lp), guard_track_free(&d->h[i].tr);
    for (int i = 0; d->kv && i < 2 * d->W; i++)
        lethe_gpt_kv_free(d->kv[i]);
    free(d->h), free(d->kv), free(d->z), free(d->cands), free(d->top);
    guard_checker_free(&d->chk);
}

/* The first beam: the prompt, nothing generated, the checks at their start. */
static lethe_status start(dec *d, const int32_t *prompt)
{
    beam *b = &d->h[0];
    memcpy(b->seq, prompt, sizeof(int32_t) * (size_t)d->n_prompt);
    b->len = d->n_prompt;
    lethe_status st = guard_track_start(&d->chk, &b->tr);
    if (st)
        return st;
    return lethe_gpt_kv_forward(d->kv[0], prompt, d->n_prompt, NULL, NULL);
}

/* Take the best candidates as the next beams (or finished ones, at the
 * end-of-text token), as gen_beam does. */
static lethe_status choose(dec *d, beam *alive, beam *next, beam *fin, lethe_gpt_kv **kv_alive,
                           lethe_gpt_kv **kv_next, int nc, int step, int *n_next, int *n_fin)
{
    qsort(d->cands, (size_t)nc, sizeof *d->cands, by_score);
    *n_next = 0;
    for (int i = 0; i < nc && *n_next < d->W && *n_fin < d->W; i++) {
        const cand *c = &d->cands[i];
        beam *dst = &next[*n_next];
        beam_copy(dst, &alive[c->beam], step);
        dst->seq[dst->len++] = c->token;
        lethe_status st = guard_track_push(&d->chk, &dst->tr, c->token);
        if (st)
            return st;
        dst->lp[step] = c->lp;
        dst->score = c->score;
        dst->logprob += c->lp;
        if (c->token == d->o->eos) {
            dst->stop = LETHE_GEN_EOS;
            beam_copy(&fin[(*n_fin)++], dst, step + 1);
        } else {
            lethe_gpt_kv_copy(kv_next[*n_next], kv_alive[c->beam]);
            (*n_next)++;
        }
    }
    return LETHE_OK;
}

/* Run the search; the finished beams are d->h[2W .. 2W + *n_fin). */
static lethe_status search(dec *d, const int32_t *prompt, int *n_fin)
{
    const int W = d->W, max_new = d->o->max_new;
    beam *alive = d->h, *next = d->h + W, *fin = d->h + 2 * W;
    lethe_gpt_kv **kv_alive = d->kv, **kv_next = d->kv + W;
    int n_alive = 1, step = 0;
    *n_fin = 0;
    lethe_status st = start(d, prompt);
    while (st == LETHE_OK && n_alive > 0 && *n_fin < W) {
        if (step == max_new || alive[0].len >= d->npos) {
            /* out of room: the alive beams finish as they are (their last
             * token was judged as ending the text) */
            int why = step == max_new ? LETHE_GEN_MAX : LETHE_GEN_CONTEXT;
            for (int b = 0; b < n_alive && *n_fin < W; b++) {
                alive[b].stop = why;
                beam_copy(&fin[(*n_fin)++], &alive[b], step);
            }
            break;
        }
        const int final = step + 1 == max_new || alive[0].len + 1 >= d->npos;
        int nc = 0;
        for (int b = 0; b < n_alive && st == LETHE_OK; b++)
            st = offer(d, &alive[b], b, kv_alive[b]->logits, final, &nc);
        int n_next = 0;
        if (st == LETHE_OK)
            st = choose(d, alive, next, fin, kv_alive, kv_next, nc, step, &n_next, n_fin);
        if (st)
            break;
        d->res->steps++;
        beam *th = alive;
        alive = next, next = th;
        lethe_gpt_kv **tk = kv_alive;
        kv_alive = kv_next, kv_next = tk;
        n_alive = n_next; /* 0 when every candidate was pruned */
        step++;
        for (int b = 0; b < n_alive && st == LETHE_OK && *n_fin < W; b++)
            if (step < max_new && alive[b].len < d->npos)
                st = lethe_gpt_kv_forward(kv_alive[b], alive[b].seq + alive[b].len - 1, 1, NULL,
                                          NULL);
    }
    return st;
}

/* ---- the answer --------------------------------------------------------------------- */

static double rank_of(const beam *b, int n_prompt, int norm)
{
    int n = b->len - n_prompt;
    return norm && n > 0 ? b->score / n : b->score;
}

static lethe_status refuse(dec *d)
{
    lethe_guard_decode_result *r = d->res;
    const char *text = d->o->refusal ? d->o->refusal : LETHE_GUARD_REFUSAL;
    r->refused = 1;
    r->stop = LETHE_GEN_MAX;
    r->text_len = strlen(text);
    r->text = malloc(r->text_len + 1);
    if (!r->text)
        return lethe_fail(LETHE_ERR_NOMEM, "guard decode: out of memory");
    memcpy(r->text, text, r->text_len + 1);
    return LETHE_OK;
}

/* The best finished beam's tokens, log-probabilities and text into d->res. */
static lethe_status answer(dec *d, const beam *fin, int n_fin)
{
    int best = 0;
    for (int i = 1; i < n_fin; i++)
        if (rank_of(&fin[i], d->n_prompt, d->o->length_norm) >
            rank_of(&fin[best], d->n_prompt, d->o->length_norm))
            best = i;
    const beam *b = &fin[best];
    lethe_guard_decode_result *r = d->res;
    int n = b->len - d->n_prompt;
    size_t m = n > 0 ? (size_t)n : 1;
    r->tokens = malloc(sizeof(int32_t) * m);
    r->logprobs = malloc(sizeof(float) * m);
    uint32_t *ids = malloc(sizeof(uint32_t) * m);
    lethe_status st = LETHE_OK;
    if (!r->tokens || !r->logprobs || !ids) {
        st = lethe_fail(LETHE_ERR_NOMEM, "guard decode: out of memory");
    } else {
        memcpy(r->tokens, b->seq + d->n_prompt, sizeof(int32_t) * (size_t)n);
        memcpy(r->logprobs, b->lp, sizeof(float) * (size_t)n);
        r->n = n, r->score = b->score, r->logprob = b->logprob, r->stop = b->stop;
        int n_text = n > 0 && b->stop == LETHE_GEN_EOS ? n - 1 : n; /* the EOS is no text */
        for (int i = 0; i < n_text; i++)
            ids[i] = (uint32_t)r->tokens[i];
        unsigned char *text = NULL;
        st = lethe_tokenizer_decode(d->tok, ids, (size_t)n_text, &text, &r->text_len);
        r->text = (char *)text;
    }
    free(ids);
    return st;
}

/* ---- the entry point ------------------------------------------------------------------ */

static lethe_status check_args(const lethe_gpt *g, const lethe_tokenizer_t *tok,
                               const lethe_guard_forbid_t *f, const int32_t *prompt,
                               int n_prompt, const lethe_guard_decode_opts *o)
{
    if (!g || !tok)
        return lethe_fail(LETHE_ERR_INVALID, "guard decode: no %s", g ? "tokenizer" : "model");
    const int V = g->cfg.vocab_size, npos = g->cfg.n_positions;
    if (!prompt || n_prompt < 1 || n_prompt > npos)
        return lethe_fail(LETHE_ERR_INVALID,
                          "guard decode: the prompt has %d tokens (need 1 to n_positions %d)",
                          prompt ? n_prompt : 0, npos);
    for (int i = 0; i < n_prompt; i++)
        if (prompt[i] < 0 || prompt[i] >= V)
            return lethe_fail(LETHE_ERR_INVALID,
                              "guard decode: prompt token %d is outside the vocabulary [0, %d)",
                              prompt[i], V);
    if (o->beam < 1 || o->beam > 4096)
        return lethe_fail(LETHE_ERR_INVALID, "guard decode: beam width %d (1 to 4096)", o->beam);
    if (o->max_new < 0)
        return lethe_fail(LETHE_ERR_INVALID, "guard decode: max_new %d is negative", o->max_new);
    if (!(o->delta > 0.0f))
        return lethe_fail(LETHE_ERR_INVALID, "guard decode: delta %g (must be > 0)",
                          (double)o->delta);
    if (o->rules & ~(unsigned)LETHE_GUARD_RULE_ALL)
        return lethe_fail(LETHE_ERR_INVALID, "guard decode: unknown rule bits 0x%x", o->rules);
    if (o->eos < -1 || o->eos >= V)
        return lethe_fail(LETHE_ERR_INVALID,
                          "guard decode: eos %d is outside the vocabulary [0, %d) and not -1",
                          (int)o->eos, V);
    if (f && f->tok != tok)
        return lethe_fail(LETHE_ERR_INVALID,
                          "guard decode: the forbidden set was built with another tokenizer");
    if (f && f->kind == LETHE_GUARD_WORDVEC_EMBED && f->g != g)
        return lethe_fail(LETHE_ERR_INVALID,
                          "guard decode: the forbidden set's word vectors are another model's");
    return LETHE_OK;
}

lethe_status lethe_guard_decode(const lethe_gpt *g, const lethe_tokenizer_t *tok,
                                const lethe_guard_forbid_t *f, const int32_t *prompt,
                                int n_prompt, const lethe_guard_decode_opts *opts,
                                lethe_guard_decode_result *res)
{
    memset(res, 0, sizeof *res);
    lethe_guard_decode_opts o;
    lethe_guard_decode_defaults(&o);
    if (opts)
        o = *opts;
    lethe_status st = check_args(g, tok, f, prompt, n_prompt, &o);
    if (st)
        return st;
    dec d = {.g = g, .tok = tok, .o = &o, .n_prompt = n_prompt, .W = o.beam,
             .V = g->cfg.vocab_size, .npos = g->cfg.n_positions, .res = res};
    st = guard_checker_init(&d.chk, f, tok, o.rules, o.eos, o.delta);
    if (st == LETHE_OK)
        st = dec_alloc(&d);
    int n_fin = 0;
    if (st == LETHE_OK)
        st = search(&d, prompt, &n_fin);
    if (st == LETHE_OK)
        st = n_fin ? answer(&d, d.h + 2 * d.W, n_fin) : refuse(&d);
    dec_free(&d);
    if (st)
        lethe_guard_decode_result_free(res);
    return st;
}
