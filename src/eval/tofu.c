/* TOFU's metrics on a GPT model (lethe/tofu.h). */
#include "lethe/tofu.h"
#include "lethe/gpt_generate.h"
#include "lethe/stats.h"

#include <math.h>
#include <stdlib.h>
#include <string.h>

#define PROMPT_HEAD "Question: "
#define PROMPT_TAIL "\nAnswer:"

void lethe_tofu_defaults(lethe_tofu_opts *o)
{
    /* every field set, those added later included */
    *o = (lethe_tofu_opts){.max_new = 200, .batch = 16, .memo = LETHE_TOFU_MEMO_PAPER};
}

/* Append the tokens of text[0..len) to ids (capacity grown). */
static lethe_status append_text(const lethe_tokenizer_t *tok, const char *text, size_t len,
                                int32_t **ids, int *n, int *cap)
{
    uint32_t *t = NULL;
    size_t m = 0;
    lethe_status st = lethe_tokenizer_encode(tok, text, len, &t, &m);
    if (st)
        return st;
    if (*n + (int)m + 1 > *cap) {
        int c = (*n + (int)m + 1) * 2;
        int32_t *p = realloc(*ids, sizeof(int32_t) * (size_t)c);
        if (!p) {
            free(t);
            return lethe_fail(LETHE_ERR_NOMEM, "out of memory");
        }
        *ids = p, *cap = c;
    }
    for (size_t i = 0; i < m; i++)
        (*ids)[(*n)++] = (int32_t)t[i];
    free(t);
    return LETHE_OK;
}

lethe_status lethe_qa_encode(const lethe_tokenizer_t *tok, const char *question,
                             const char *answer, int32_t eot, int32_t **ids, int *n_prompt,
                             int *n)
{
    size_t ql = strlen(question), al = strlen(answer);
    char *prompt = malloc(sizeof PROMPT_HEAD + ql + sizeof PROMPT_TAIL);
    char *ans = malloc(al + 2);
    int32_t *out = NULL;
    int len = 0, cap = 0;
    lethe_status st = LETHE_OK;
    if (!prompt || !ans) {
        st = lethe_fail(LETHE_ERR_NOMEM, "out of memory");
        goto done;
    }
    memcpy(prompt, PROMPT_HEAD, sizeof PROMPT_HEAD - 1);
    memcpy(prompt + sizeof PROMPT_HEAD - 1, question, ql);
    memcpy(prompt + sizeof PROMPT_HEAD - 1 + ql, PROMPT_TAIL, sizeof PROMPT_TAIL);
    ans[0] = ' ';
    memcpy(ans + 1, answer, al + 1);
    st = append_text(tok, prompt, strlen(prompt), &out, &len, &cap);
    if (st)
        goto done;
    *n_prompt = len;
    st = append_text(tok, ans, al + 1, &out, &len, &cap);
    if (st)
        goto done;
    if (eot >= 0)
        out[len++] = eot;
    *ids = out, *n = len;
    out = NULL;
done:
    free(out);
    free(prompt);
    free(ans);
    return st;
}

/* The first index of the largest of z[0..V) (the greedy choice). */
static int argmax(const float *z, int V)
{
    int best = 0;
    for (int v = 1; v < V; v++)
        if (z[v] > z[best])
            best = v;
    return best;
}

/* log p(target) and the argmax of a row z the logits processor changed (in
 * double: the row's log-sum-exp is no longer the forward's). */
static double edited_row(const float *z, int V, int32_t target, int *best)
{
    *best = argmax(z, V);
    double m = z[*best], sum = 0;
    for (int v = 0; v < V; v++)
        sum += exp((double)z[v] - m);
    return (double)z[target] - m - log(sum);
}

void lethe_qa_score_rows(const float *logits, const float *logprobs, int V, const int32_t *ids,
                         int n_prompt, int n, int closed, lethe_qa_score *s)
{
    LETHE_ASSERT(n_prompt >= 1 && n > n_prompt);
    int first = n_prompt - 1, last = n - 1; /* rows [first, last) */
    s->nll_sum = 0.0;
    s->n = last - first;
    s->n_body = s->n - (closed != 0);
    s->n_match = s->n_match_body = 0;
    s->k_star = s->n;
    s->k_star_body = s->n_body;
    int tail = 1, tail_body = 1; /* every argmax from here to the end is right */
    for (int t = last - 1; t >= first; t--) {
        const float *z = logits + (long)t * V;
        int best;
        if (logprobs)
            s->nll_sum -= logprobs[t], best = argmax(z, V);
        else
            s->nll_sum -= edited_row(z, V, ids[t + 1], &best);
        int hit = best == ids[t + 1];
        s->n_match += hit;
        tail = tail && hit;
        if (tail)
            s->k_star = t - first;
        if (t - first < s->n_body) {
            s->n_match_body += hit;
            tail_body = tail_body && hit;
            if (tail_body)
                s->k_star_body = t - first;
        }
    }
}

void lethe_tofu_memo(const lethe_qa_score *s, int convention, double *em, double *es)
{
    if (convention != LETHE_TOFU_MEMO_OU) {
        *em = (double)s->n_match / s->n;
        *es = 1.0 - (double)s->k_star / s->n;
        return;
    }
    int n = s->n_body, k = s->k_star_body < n ? s->k_star_body : n - 1;
    *em = n ? (double)s->n_match_body / n : NAN;
    *es = n ? 1.0 - (double)k / n : 0.0;
}

/* lethe_qa_score_answers, with every logit row edited by proc's rows hook
 * when there is one. */
static lethe_status score_answers(const lethe_gpt *g, const lethe_gpt_logits_proc *proc,
                                  const lethe_tokenizer_t *tok, int32_t eot,
                                  const char *const *questions, const char *const *answers,
                                  size_t n, int batch, lethe_qa_score *out)
{
    const int V = g->cfg.vocab_size, P = g->cfg.n_positions;
    int32_t **ids = calloc(n ? n : 1, sizeof *ids);
    int *np = calloc(n ? n : 1, sizeof *np), *len = calloc(n ? n : 1, sizeof *len);
    int32_t *tok_b = NULL, *tgt_b = NULL;
    lethe_gpt_rows_hook edit = proc ? proc->rows : NULL;
    lethe_gpt_ctx *x = lethe_gpt_ctx_new();
    lethe_status st = LETHE_OK;
    if (!ids || !np || !len || !x) {
        st = lethe_fail(LETHE_ERR_NOMEM, "out of memory");
        goto done;
    }
    if (batch < 1)
        batch = 1;
    for (size_t i = 0; i < n && !st; i++) {
        st = lethe_qa_encode(tok, questions[i], answers[i], eot, &ids[i], &np[i], &len[i]);
        if (!st && len[i] - 1 > P)
            st = lethe_fail(LETHE_ERR_INVALID, "question-answer pair %zu has %d tokens, more "
                            "than the model's context of %d", i + 1, len[i], P + 1);
        if (!st && len[i] <= np[i])
            st = lethe_fail(LETHE_ERR_INVALID, "question-answer pair %zu has an empty answer",
                            i + 1);
    }
    if (st)
        goto done;
    tok_b = malloc(sizeof(int32_t) * (size_t)batch * P);
    tgt_b = malloc(sizeof(int32_t) * (size_t)batch * P);
    if (!tok_b || !tgt_b) {
        st = lethe_fail(LETHE_ERR_NOMEM, "out of memory");
        goto done;
    }
    for (size_t i0 = 0; i0 < n; i0 += (size_t)batch) {
        int B = (int)(n - i0 < (size_t)batch ? n - i0 : (size_t)batch), T = 1;
        for (int b = 0; b < B; b++)
            T = len[i0 + b] - 1 > T ? len[i0 + b] - 1 : T;
        /* inputs are the pair without its last token; position t predicts
         * token t + 1, and only answer tokens are targets */
        for (int b = 0; b < B; b++) {
            const int32_t *pair = ids[i0 + b];
            int m = len[i0 + b];
            for (int t = 0; t < T; t++) {
                tok_b[b * T + t] = t < m - 1 ? pair[t] : (eot >= 0 ? eot : 0);
                tgt_b[b * T + t] = t >= np[i0 + b] - 1 && t < m - 1 ? pair[t + 1] : -1;
            }
        }
        st = lethe_gpt_ctx_forward(x, g, tok_b, tgt_b, B, T);
        if (!st && edit)
            st = edit(proc->ctx, x->logits, V, tok_b, B, T);
        if (st)
            goto done;
        for (int b = 0; b < B; b++) {
            const float *lp = edit ? NULL : x->logprobs + (long)b * T;
            lethe_qa_score_rows(x->logits + (long)b * T * V, lp, V, ids[i0 + b], np[i0 + b],
                                len[i0 + b], eot >= 0, &out[i0 + b]);
        }
    }
done:
    for (size_t i = 0; ids && i < n; i++)
        free(ids[i]);
    free(ids);
    free(np);
    free(len);
    free(tok_b);
    free(tgt_b);
    lethe_gpt_ctx_free(x);
    return st;
}

lethe_status lethe_qa_score_answers(const lethe_gpt *g, const lethe_tokenizer_t *tok,
                                    int32_t eot, const char *const *questions,
                                    const char *const *answers, size_t n, int batch,
                                    lethe_qa_score *out)
{
    return score_answers(g, NULL, tok, eot, questions, answers, n, batch, out);
}

static double answer_prob(const lethe_qa_score *s)
{
    return exp(-s->nll_sum / s->n);
}

/* The greedy answer to a question: text decoded up to end-of-text. */
static lethe_status greedy_answer(const lethe_gpt *g, const lethe_gpt_logits_proc *proc,
                                  const lethe_tokenizer_t *tok, int32_t eot, const char *question,
                                  int max_new, char **text)
{
    int32_t *ids = NULL;
    int np = 0, n = 0;
    *text = NULL;
    lethe_status st = lethe_qa_encode(tok, question, "", -1, &ids, &np, &n);
    if (st)
        return st;
    if (np >= g->cfg.n_positions) {
        free(ids);
        return lethe_fail(LETHE_ERR_INVALID, "a question of %d tokens leaves no room to answer "
                          "in the model's context of %d", np, g->cfg.n_positions);
    }
    lethe_gen_opts o;
    lethe_gen_defaults(&o);
    o.max_new = max_new;
    o.eos = eot;
    if (proc) {
        o.logits_hook = proc->step;
        o.logits_ctx = proc->ctx;
    }
    lethe_gen_result r;
    st = lethe_gpt_generate(g, ids, np, &o, &r);
    free(ids);
    if (!st && proc && proc->status && (st = proc->status(proc->ctx)) != LETHE_OK)
        lethe_gen_result_free(&r);
    if (st)
        return st;
    int m = r.n;
    if (m > 0 && r.tokens[m - 1] == eot)
        m--;
    uint32_t *u = malloc(sizeof(uint32_t) * (size_t)(m ? m : 1));
    if (!u) {
        lethe_gen_result_free(&r);
        return lethe_fail(LETHE_ERR_NOMEM, "out of memory");
    }
    for (int i = 0; i < m; i++)
        u[i] = (uint32_t)r.tokens[i];
    unsigned char *bytes = NULL;
    size_t blen = 0;
    st = lethe_tokenizer_decode(tok, u, (size_t)m, &bytes, &blen);
    free(u);
    lethe_gen_result_free(&r);
    if (!st)
        *text = (char *)bytes;
    return st;
}

lethe_status lethe_tofu_eval_set(const lethe_gpt *g, const lethe_tokenizer_t *tok,
                                 int32_t eot, const lethe_qa *items, size_t n, int kind,
                                 const lethe_tofu_opts *o, lethe_tofu_set *out)
{
    memset(out, 0, sizeof *out);
    out->kind = kind;
    if (n == 0)
        return lethe_fail(LETHE_ERR_INVALID, "an empty evaluation set");
    /* every (question, answer variant) pair, scored together: per item the
     * answer, the paraphrase when there is one, then the perturbed answers */
    size_t total = 0;
    for (size_t i = 0; i < n; i++)
        total += 1 + (items[i].paraphrased_answer != NULL) + (size_t)items[i].n_perturbed;
    const char **q = malloc(sizeof *q * total), **a = malloc(sizeof *a * total);
    lethe_qa_score *sc = malloc(sizeof *sc * total);
    out->samples = calloc(n, sizeof *out->samples);
    lethe_status st = LETHE_OK;
    if (!q || !a || !sc || !out->samples) {
        st = lethe_fail(LETHE_ERR_NOMEM, "out of memory");
        goto done;
    }
    size_t k = 0;
    for (size_t i = 0; i < n; i++) {
        q[k] = items[i].question, a[k++] = items[i].answer;
        if (items[i].paraphrased_answer)
            q[k] = items[i].question, a[k++] = items[i].paraphrased_answer;
        for (int j = 0; j < items[i].n_perturbed; j++)
            q[k] = items[i].question, a[k++] = items[i].perturbed[j];
    }
    st = score_answers(g, o->logits, tok, eot, q, a, total, o->batch, sc);
    if (st)
        goto done;
    out->n = n;
    double sum_p = 0, sum_r = 0, sum_tr = 0, sum_em = 0, sum_es = 0;
    size_t n_flag = 0, n_ref = 0;
    size_t n_tr = 0, n_em = 0;
    k = 0;
    for (size_t i = 0; i < n; i++) {
        lethe_tofu_sample *s = &out->samples[i];
        const lethe_qa_score *ans = &sc[k++];
        const lethe_qa_score *para = items[i].paraphrased_answer ? &sc[k++] : NULL;
        const lethe_qa_score *pert = &sc[k];
        int np = items[i].n_perturbed;
        k += (size_t)np;
        double pa = answer_prob(ans), sum_pp = 0, sum_nll = 0;
        for (int j = 0; j < np; j++) {
            sum_pp += answer_prob(&pert[j]);
            sum_nll += pert[j].nll_sum / pert[j].n;
        }
        s->prob = kind == LETHE_TOFU_FACTS ? pa / (pa + sum_pp) : pa;
        lethe_tofu_memo(ans, o->memo, &s->em, &s->es);
        const lethe_qa_score *ref = kind == LETHE_TOFU_FACTS ? ans : para;
        s->truth_ratio = NAN;
        if (np > 0 && ref) {
            double p_pert = o->arithmetic ? sum_pp / np : exp(-sum_nll / np);
            s->truth_ratio = p_pert / answer_prob(ref);
            double r = s->truth_ratio;
            sum_tr += kind == LETHE_TOFU_FORGET ? fmin(r, 1.0 / r) : fmax(0.0, 1.0 - r);
            n_tr++;
        }
        s->rouge_l = NAN;
        if (!o->no_generate) {
            int by_para = o->paraphrased && kind == LETHE_TOFU_FORGET;
            const char *qi = by_para && items[i].paraphrased_question
                                 ? items[i].paraphrased_question
                                 : items[i].question;
            if (o->answerer) {
                st = o->answerer->answer(o->answerer->ctx, qi, o->max_new, eot, &s->generated,
                                         &s->flagged, &s->refused);
                n_flag += s->flagged, n_ref += s->refused;
            } else {
                st = greedy_answer(g, o->logits, tok, eot, qi, o->max_new, &s->generated);
            }
            if (st)
                goto done;
            lethe_rouge_score rs;
            st = lethe_rouge_l(items[i].answer, s->generated, 1, &rs);
            if (st)
                goto done;
            s->rouge_l = rs.recall;
            sum_r += rs.recall;
        }
        sum_p += s->prob, sum_es += s->es;
        if (isfinite(s->em))
            sum_em += s->em, n_em++;
        if (o->progress)
            lethe_progress_update(o->progress, i + 1);
    }
    out->prob = sum_p / n;
    out->rouge_l = o->no_generate ? NAN : sum_r / n;
    out->truth_ratio = n_tr ? sum_tr / n_tr : NAN;
    out->em = n_em ? sum_em / n_em : NAN;
    out->es = sum_es / n;
    out->flagged = o->answerer && !o->no_generate ? (double)n_flag / (double)n : NAN;
    out->refused = o->answerer && !o->no_generate ? (double)n_ref / (double)n : NAN;
done:
    free(q);
    free(a);
    free(sc);
    if (st)
        lethe_tofu_set_free(out);
    return st;
}

void lethe_tofu_set_free(lethe_tofu_set *s)
{
    for (size_t i = 0; s->samples && i < s->n; i++)
        free(s->samples[i].generated);
    free(s->samples);
    s->samples = NULL;
    s->n = 0;
}

/* The finite truth ratios of a set, in a new array. */
static double *ratios(const lethe_tofu_set *s, size_t *m)
{
    double *r = malloc(sizeof(double) * (s->n ? s->n : 1));
    *m = 0;
    for (size_t i = 0; r && i < s->n; i++)
        if (isfinite(s->samples[i].truth_ratio))
            r[(*m)++] = s->samples[i].truth_ratio;
    return r;
}

lethe_status lethe_tofu_forget_quality(const lethe_tofu_set *model, const lethe_tofu_set *oracle,
                                       double *p_value)
{
    size_t na, nb;
    double *a = ratios(model, &na), *b = ratios(oracle, &nb);
    lethe_status st;
    if (!a || !b)
        st = lethe_fail(LETHE_ERR_NOMEM, "out of memory");
    else if (!na || !nb)
        st = lethe_fail(LETHE_ERR_INVALID, "Forget Quality needs truth ratios on both sides "
                        "(%zu and %zu)", na, nb);
    else {
        lethe_ks_result ks;
        st = lethe_stats_ks_2samp(a, na, b, nb, &ks);
        if (!st)
            *p_value = ks.pvalue;
    }
    free(a);
    free(b);
    return st;
}

lethe_status lethe_tofu_model_utility(const lethe_tofu_set *const *sets, size_t n_sets,
                                      double *mu)
{
    double x[3 * 8];
    if (n_sets == 0 || n_sets > 8)
        return lethe_fail(LETHE_ERR_INVALID, "Model Utility over %zu sets (1 to 8)", n_sets);
    for (size_t i = 0; i < n_sets; i++) {
        x[3 * i] = sets[i]->prob;
        x[3 * i + 1] = sets[i]->rouge_l;
        x[3 * i + 2] = sets[i]->truth_ratio;
    }
    for (size_t i = 0; i < 3 * n_sets; i++)
        if (!isfinite(x[i]))
            return lethe_fail(LETHE_ERR_INVALID, "Model Utility needs probability, ROUGE-L and "
                              "truth ratio on every set (set %zu lacks one)", i / 3 + 1);
    return lethe_stats_hmean(x, 3 * n_sets, mu);
}
