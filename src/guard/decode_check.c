/* The constrained decoder's checks on one more token of a beam: the hard
 * match (trie), the text match (automaton) and the soft match (word
 * vectors), as lethe/guard_decode.h defines them. A track holds a beam's
 * state for them; judging a candidate reads it, pushing a chosen token moves
 * it on. */
#include <math.h>
#include <stdlib.h>
#include <string.h>

#include "decode_impl.h"
#include "guard_impl.h"

#define WORD_MAX LETHE_GUARD_WORD_MAX

/* ---- the checker --------------------------------------------------------------- */

lethe_status guard_checker_init(guard_checker *c, const lethe_guard_forbid_t *f,
                                const lethe_tokenizer_t *tok, unsigned rules, int32_t eos,
                                double delta)
{
    memset(c, 0, sizeof *c);
    c->f = f, c->tok = tok, c->eos = eos, c->delta = delta;
    /* a check with nothing to look for costs nothing */
    if (f && lethe_guard_trie_count(f->trie))
        c->rules |= rules & LETHE_GUARD_RULE_TRIE;
    if (f && lethe_guard_ac_count(f->ac))
        c->rules |= rules & LETHE_GUARD_RULE_AC;
    if (f && f->n_words)
        c->rules |= rules & LETHE_GUARD_RULE_SOFT;
    c->cur_cap = (f ? f->longest : 0) + 1;
    c->cur_tmp = malloc(sizeof *c->cur_tmp * c->cur_cap);
    if (!c->cur_tmp)
        return lethe_fail(LETHE_ERR_NOMEM, "guard decode: out of memory");
    if (c->rules & LETHE_GUARD_RULE_SOFT)
        return guard_soft_init(&c->soft, f);
    return LETHE_OK;
}

void guard_checker_free(guard_checker *c)
{
    free(c->cur_tmp);
    c->cur_tmp = NULL;
    guard_soft_free(&c->soft);
}

/* ---- tracks -------------------------------------------------------------------- */

lethe_status guard_track_alloc(const guard_checker *c, guard_track *t)
{
    memset(t, 0, sizeof *t);
    t->cur = malloc(sizeof *t->cur * c->cur_cap);
    return t->cur ? LETHE_OK : lethe_fail(LETHE_ERR_NOMEM, "guard decode: out of memory");
}

void guard_track_free(guard_track *t)
{
    free(t->cur);
    t->cur = NULL;
}

lethe_status guard_track_start(const guard_checker *c, guard_track *t)
{
    uint32_t *cur = t->cur;
    memset(t, 0, sizeof *t);
    t->cur = cur;
    if (c->rules & LETHE_GUARD_RULE_AC)
        return lethe_guard_stream_init(&t->ac, c->f->ac); /* built: only reads it */
    return LETHE_OK;
}

void guard_track_copy(guard_track *dst, const guard_track *src)
{
    uint32_t *cur = dst->cur;
    memcpy(cur, src->cur, sizeof *cur * src->n_cur);
    *dst = *src;
    dst->cur = cur;
}

static lethe_status token_bytes(const guard_checker *c, int32_t token, const unsigned char **s,
                                size_t *n)
{
    *s = lethe_tokenizer_token(c->tok, (uint32_t)token, n);
    if (!*s)
        return lethe_fail(LETHE_ERR_INVALID,
                          "guard decode: token %d has no bytes in the tokenizer", token);
    return LETHE_OK;
}

/* The word in progress after s[0..n): what follows s's last separator, or
 * the old word grown by s. */
static void word_extend(guard_track *t, const unsigned char *s, size_t n)
{
    size_t start = n;
    while (start > 0 && guard_is_word_byte(s[start - 1]))
        start--;
    if (start > 0) /* s holds a separator: a new word begins after it */
        t->word_len = 0, t->word_long = 0;
    size_t add = n - start;
    if (t->word_long || t->word_len + add > WORD_MAX) {
        t->word_long = 1;
        return;
    }
    memcpy(t->word + t->word_len, s + start, add);
    t->word_len += add;
}

lethe_status guard_track_push(guard_checker *c, guard_track *t, int32_t token)
{
    t->sim_known = 0;
    if (token == c->eos || !c->rules)
        return LETHE_OK;
    const unsigned char *s;
    size_t n;
    lethe_status st = token_bytes(c, token, &s, &n);
    if (st)
        return st;
    if (c->rules & LETHE_GUARD_RULE_TRIE) /* cursors may be advanced in place */
        t->n_cur = lethe_guard_trie_advance(c->f->trie, t->cur, t->n_cur, (uint32_t)token, t->cur,
                                            NULL, NULL);
    if (c->rules & LETHE_GUARD_RULE_AC)
        lethe_guard_stream_feed(&t->ac, s, n, NULL, NULL);
    word_extend(t, s, n);
    return LETHE_OK;
}

/* ---- the soft match -------------------------------------------------------------- */

/* Add a completed word's similarity: *prune at delta, else its penalty
 * (clamped at 0: a dissimilar word earns nothing). */
static void account(const guard_checker *c, double sim, int *prune, double *penalty)
{
    *prune |= sim >= c->delta;
    *penalty += sim > 0 ? sim : 0;
}

/* The word in progress, completed as it is; its similarity is computed once
 * per step however many of the beam's candidates complete it. */
static lethe_status judge_pending(guard_checker *c, guard_track *t, int *prune, double *penalty)
{
    if (t->word_long || t->word_len == 0)
        return LETHE_OK;
    if (!t->sim_known) {
        lethe_status st = guard_soft_sim(&c->soft, t->word, t->word_len, &t->sim);
        if (st)
            return st;
        t->sim_known = 1;
    }
    account(c, t->sim, prune, penalty);
    return LETHE_OK;
}

static lethe_status judge_word(guard_checker *c, const unsigned char *w, size_t n, int *prune,
                               double *penalty)
{
    double sim;
    lethe_status st = guard_soft_sim(&c->soft, w, n, &sim);
    if (st == LETHE_OK)
        account(c, sim, prune, penalty);
    return st;
}

/* Soft-match every word that appending s[0..n) completes: each followed by a
 * separator within s, and the last one too when the text ends there. */
static lethe_status soft_check(guard_checker *c, guard_track *t, const unsigned char *s,
                               size_t n, int ends, int *prune, double *penalty)
{
    size_t i = 0;
    while (i < n && guard_is_word_byte(s[i]))
        i++;
    lethe_status st = LETHE_OK;
    if (i < n || ends) { /* the word in progress, grown by s[0..i), ends */
        if (i == 0) {
            st = judge_pending(c, t, prune, penalty);
        } else if (!t->word_long && t->word_len + i <= WORD_MAX) {
            memcpy(c->wtmp, t->word, t->word_len);
            memcpy(c->wtmp + t->word_len, s, i);
            st = judge_word(c, c->wtmp, t->word_len + i, prune, penalty);
        }
    }
    while (st == LETHE_OK && !*prune && i < n) {
        while (i < n && !guard_is_word_byte(s[i]))
            i++;
        size_t a = i;
        while (i < n && guard_is_word_byte(s[i]))
            i++;
        if (i > a && (i < n || ends))
            st = judge_word(c, s + a, i - a, prune, penalty);
    }
    return st;
}

/* ---- judging a candidate ------------------------------------------------------------ */

lethe_status guard_judge(guard_checker *c, guard_track *t, int32_t token, int final,
                         unsigned *rule, double *penalty)
{
    *rule = 0, *penalty = 0;
    const int eos = token == c->eos;
    const unsigned char *s = NULL;
    size_t n = 0;
    lethe_status st = eos || !c->rules ? LETHE_OK : token_bytes(c, token, &s, &n);
    if (st || !c->rules)
        return st;
    if ((c->rules & LETHE_GUARD_RULE_TRIE) && !eos) {
        size_t ended = 0;
        lethe_guard_trie_advance(c->f->trie, t->cur, t->n_cur, (uint32_t)token, c->cur_tmp,
                                 &ended, NULL);
        if (ended)
            return *rule = LETHE_GUARD_RULE_TRIE, LETHE_OK;
    }
    if (c->rules & LETHE_GUARD_RULE_AC) {
        lethe_guard_stream ac = t->ac; /* a copy: the track moves on only if chosen */
        size_t hits = lethe_guard_stream_feed(&ac, s, n, NULL, NULL);
        if (hits == 0 && (eos || final))
            hits = lethe_guard_stream_end(&ac, NULL, NULL);
        if (hits)
            return *rule = LETHE_GUARD_RULE_AC, LETHE_OK;
    }
    if (c->rules & LETHE_GUARD_RULE_SOFT) {
        int prune = 0;
        st = soft_check(c, t, s, n, eos || final, &prune, penalty);
        if (st == LETHE_OK && prune)
            *rule = LETHE_GUARD_RULE_SOFT, *penalty = 0;
    }
    return st;
}
