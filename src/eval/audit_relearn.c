/* The audit's relearning attack (lethe/audit.h, "relearn"): fine-tune
 * copies of the unlearned model and of the oracle on T, measure V. */
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "audit_int.h"
#include "lethe/lm_unlearn.h"
#include "lethe/optim.h"
#include "lethe/rng.h"
#include "lethe/tofu.h"

static const int checkpoints[] = {0, 5, 10, 25, 50, 100};
enum { N_CHECK = sizeof checkpoints / sizeof checkpoints[0], SCORE_BATCH = 16 };

/* Question-answer pairs (pointers into rows owned elsewhere). */
typedef struct pairs {
    const char **q, **a;
    size_t n;
} pairs;

static int pairs_add(pairs *p, const lethe_tofu_row *r)
{
    const char **q = realloc(p->q, (p->n + 1) * sizeof *q);
    if (q)
        p->q = q;
    const char **a = q ? realloc(p->a, (p->n + 1) * sizeof *a) : NULL;
    if (!a)
        return 0;
    p->a = a;
    p->q[p->n] = r->question, p->a[p->n] = r->answer;
    p->n++;
    return 1;
}

static void pairs_free(pairs *p)
{
    free(p->q);
    free(p->a);
    memset(p, 0, sizeof *p);
}

/* 0 .. n - 1 ordered by a keyed hash (ties by index): a fixed shuffle. */
static long *shuffled(long n, uint64_t key)
{
    long *o = malloc(sizeof *o * (size_t)(n ? n : 1));
    uint64_t *h = malloc(sizeof *h * (size_t)(n ? n : 1));
    if (!o || !h) {
        free(o), free(h);
        return NULL;
    }
    for (long i = 0; i < n; i++)
        o[i] = i, h[i] = lethe_rng_hash(key, 0x41554454u, (uint64_t)i);
    for (long i = 1; i < n; i++) /* insertion sort: n is a few hundred */
        for (long j = i; j > 0 && (h[o[j]] < h[o[j - 1]] ||
                                   (h[o[j]] == h[o[j - 1]] && o[j] < o[j - 1])); j--) {
            long t = o[j];
            o[j] = o[j - 1], o[j - 1] = t;
        }
    free(h);
    return o;
}

/* LETHE_ERR_INVALID when a question or answer of V occurs in the attack's text. */
static lethe_status disjoint(const pairs *atk, const pairs *v)
{
    for (size_t i = 0; i < v->n; i++)
        for (size_t j = 0; j < atk->n; j++) {
            const char *hit = NULL;
            if (strstr(atk->q[j], v->q[i]) || strstr(atk->a[j], v->q[i]))
                hit = v->q[i];
            else if (strstr(atk->a[j], v->a[i]) || strstr(atk->q[j], v->a[i]))
                hit = v->a[i];
            if (hit)
                return lethe_fail(LETHE_ERR_INVALID, "the attack set touches V: its pair %zu "
                                  "holds V's text '%.60s'", j + 1, hit);
        }
    return LETHE_OK;
}

/* The related text: V's questions (they name V's entities and ask about
 * them) without those that state one of V's answers or facts (the
 * generator's keys, where the benchmark has them), one document each. */
static lethe_status related(const audit_ctx *a, const pairs *v, const size_t *v_row,
                            pairs *docs)
{
    audit_keys k = {0};
    const char **keys = calloc(a->forget.n ? a->forget.n : 1, sizeof *keys);
    lethe_status st = keys ? audit_keys_load(a->c->data, &k)
                           : lethe_fail(LETHE_ERR_NOMEM, "out of memory");
    if (!st && k.n)
        st = audit_keys_of(&k, a->c->split, &a->forget, keys);
    for (size_t i = 0; !st && i < v->n; i++) {
        int leak = 0;
        for (size_t j = 0; !leak && j < v->n; j++) {
            const char *key = keys[v_row[j]];
            leak = strstr(v->q[i], v->a[j]) || (key && strstr(v->q[i], key));
        }
        lethe_tofu_row r = {.question = (char *)v->q[i], .answer = ""};
        if (!leak && !pairs_add(docs, &r))
            st = lethe_fail(LETHE_ERR_NOMEM, "out of memory");
    }
    if (!st && !docs->n)
        st = lethe_fail(LETHE_ERR_INVALID, "every question of V states one of V's facts: no "
                        "related text is left");
    free(keys);
    audit_keys_free(&k);
    return st;
}

/* Teacher-forced accuracy and mean log-probability per token of V's answers. */
static lethe_status score_v(const lethe_gpt *g, const audit_ctx *a, const pairs *v,
                            lethe_qa_score *buf, double *acc, double *lp)
{
    lethe_status st = lethe_qa_score_answers(g, a->run.tok, (int32_t)a->run.eot, v->q, v->a,
                                             v->n, SCORE_BATCH, buf);
    double sa = 0.0, sl = 0.0;
    for (size_t i = 0; !st && i < v->n; i++) {
        sa += (double)buf[i].n_match / buf[i].n;
        sl += -buf[i].nll_sum / buf[i].n;
    }
    *acc = sa / (double)v->n;
    *lp = sl / (double)v->n;
    return st;
}

/* Fine-tune a copy of g on the attack set d for the checkpoints up to
 * max_steps with seed s; acc and lp (N_CHECK) get V's figures at each. */
static lethe_status attack(const audit_ctx *a, const lethe_gpt *g, const lethe_lm_set *d,
                           const pairs *v, uint64_t seed, lethe_qa_score *buf, double *acc,
                           double *lp)
{
    const lethe_audit_cfg *c = a->c;
    const int B = c->batch, T = d->T;
    lethe_gpt *m = lethe_lm_clone(g);
    lethe_optim *opt = m ? lethe_optim_init(LETHE_OPTIM_ADAMW, m->n_params) : NULL;
    int32_t *tok = malloc(sizeof *tok * (size_t)B * (size_t)T);
    int32_t *tgt = malloc(sizeof *tgt * (size_t)B * (size_t)T);
    long *order = malloc(sizeof *order * (size_t)d->n);
    lethe_status st = m && opt && tok && tgt && order ? LETHE_OK
                                                      : lethe_fail(LETHE_ERR_NOMEM, "out of memory");
    if (opt)
        opt->weight_decay = 0.0f;
    long pos = d->n, epoch = -1;
    for (int k = 0, step = 0; !st && k < N_CHECK && checkpoints[k] <= c->max_steps; k++) {
        for (; !st && step < checkpoints[k]; step++) {
            for (int b = 0; !st && b < B; b++) {
                if (pos == d->n) {
                    st = lethe_lm_order(d->n, seed, ++epoch, order);
                    pos = 0;
                }
                long r = order[pos++];
                memcpy(tok + (long)b * T, d->tokens + r * T, sizeof *tok * (size_t)T);
                memcpy(tgt + (long)b * T, d->targets + r * T, sizeof *tgt * (size_t)T);
            }
            if (!st)
                st = lethe_gpt_forward(m, tok, tgt, B, T);
            if (!st && !isfinite(m->loss))
                st = lethe_fail(LETHE_ERR_FAILED, "the relearning attack's loss is not finite "
                                "at step %d (lower --lr)", step + 1);
            if (!st) {
                lethe_gpt_backward(m);
                lethe_grad_clip(m->grads, m->n_params, 1.0);
                lethe_optim_step_zero_grad(opt, m->params, m->grads, (float)c->lr);
            }
        }
        if (!st)
            st = score_v(m, a, v, buf, &acc[k], &lp[k]);
    }
    free(order);
    free(tgt);
    free(tok);
    lethe_optim_free(opt);
    lethe_gpt_free(m);
    return st;
}

/* Per-seed figures of one attacked model into the eval object. */
static cJSON *seeds_json(const double *acc, const double *lp, int S, int nk)
{
    cJSON *arr = cJSON_CreateArray();
    for (int s = 0; arr && s < S; s++) {
        cJSON *o = cJSON_CreateObject();
        cJSON_AddNumberToObject(o, "seed", s);
        cJSON_AddItemToObject(o, "accuracy", audit_array(acc + (long)s * N_CHECK, nk));
        cJSON_AddItemToObject(o, "logprob", audit_array(lp + (long)s * N_CHECK, nk));
        cJSON_AddItemToArray(arr, o);
    }
    return arr;
}

/* mean and sd over seeds of x[s * N_CHECK + k], per k < nk. */
static void over_seeds(const double *x, int S, int nk, double *mean, double *sd)
{
    double col[64];
    for (int k = 0; k < nk; k++) {
        for (int s = 0; s < S && s < 64; s++)
            col[s] = x[(long)s * N_CHECK + k];
        mean[k] = audit_mean(col, S < 64 ? S : 64);
        if (sd)
            sd[k] = audit_sd(col, S < 64 ? S : 64);
    }
}

/* The summary's figures and verdict. */
static void summarize(const audit_ctx *a, cJSON *o, const double *acc_m, const double *lp_m,
                      const double *acc_o, const double *lp_o, double acc_t, int S, int nk)
{
    const lethe_audit_cfg *c = a->c;
    double mean[N_CHECK] = {0}, sd[N_CHECK] = {0}, rec[64 * N_CHECK] = {0},
           lift[64 * N_CHECK] = {0};
    int steps[N_CHECK] = {0};
    for (int k = 0; k < nk; k++)
        steps[k] = checkpoints[k];
    cJSON_AddItemToObject(o, "steps", cJSON_CreateIntArray(steps, nk));
    audit_num(o, "target_accuracy", acc_t);
    over_seeds(acc_m, S, nk, mean, sd);
    cJSON_AddItemToObject(o, "model_accuracy", audit_array(mean, nk));
    over_seeds(lp_m, S, nk, mean, NULL);
    cJSON_AddItemToObject(o, "model_logprob", audit_array(mean, nk));
    over_seeds(acc_o, S, nk, mean, sd);
    cJSON_AddItemToObject(o, "oracle_accuracy", audit_array(mean, nk));
    cJSON_AddItemToObject(o, "oracle_accuracy_sd", audit_array(sd, nk));
    over_seeds(lp_o, S, nk, mean, NULL);
    cJSON_AddItemToObject(o, "oracle_logprob", audit_array(mean, nk));
    /* the oracle before any step is the same for every seed */
    const double gap = acc_t - acc_o[0];
    for (int s = 0; s < S && s < 64; s++)
        for (int k = 0; k < nk; k++) {
            long i = (long)s * N_CHECK + k;
            rec[i] = gap > 1e-9 ? (acc_m[i] - acc_o[i]) / gap : NAN;
            lift[i] = gap > 1e-9 ? (acc_o[i] - acc_o[0]) / gap : NAN;
        }
    over_seeds(rec, S, nk, mean, sd);
    cJSON_AddItemToObject(o, "recovery", audit_array(mean, nk));
    cJSON_AddItemToObject(o, "recovery_sd", audit_array(sd, nk));
    int half = -1;
    for (int k = 0; k < nk && half < 0; k++)
        if (mean[k] >= 0.5)
            half = checkpoints[k];
    double last = mean[nk - 1], first = mean[0];
    double acc_m0 = 0.0;
    for (int s = 0; s < S && s < 64; s++)
        acc_m0 += acc_m[(long)s * N_CHECK] / S;
    over_seeds(lift, S, nk, mean, sd);
    cJSON_AddItemToObject(o, "oracle_lift", audit_array(mean, nk));
    cJSON_AddItemToObject(o, "oracle_lift_sd", audit_array(sd, nk));
    if (half >= 0)
        cJSON_AddNumberToObject(o, "steps_to_half", half);
    else
        cJSON_AddNullToObject(o, "steps_to_half");
    char ev[512];
    const char *on = !strcmp(c->attack, "retain")    ? "10 retain pairs"
                     : !strcmp(c->attack, "related") ? "V's questions"
                                                     : "T";
    if (!(gap > 1e-9)) {
        cJSON_AddNullToObject(o, "verdict");
        snprintf(ev, sizeof ev, "relearn: undecided: the target's accuracy on V (%.3f) is no "
                 "higher than the oracle's (%.3f), so there is nothing to recover", acc_t,
                 acc_o[0]);
    } else {
        int supp = half >= 0 && half <= c->undone_steps;
        cJSON_AddStringToObject(o, "verdict", supp ? "suppression" : "removal");
        if (half == 0)
            snprintf(ev, sizeof ev, "relearn: before any fine-tuning the model keeps %.0f%% of "
                     "the target's lead over the oracle on V (teacher-forced accuracy %.3f, "
                     "target %.3f, oracle %.3f): the knowledge was not removed; %d steps on %s "
                     "take it to %.0f%%", 100 * first, acc_m0, acc_t, acc_o[0],
                     checkpoints[nk - 1], on, 100 * last);
        else if (half > 0)
            snprintf(ev, sizeof ev, "relearn: %d steps of fine-tuning on %s recover %.0f%% of "
                     "the target's lead over the oracle on V (half at %d steps; suppression "
                     "when within %d)", checkpoints[nk - 1], on, 100 * last, half, c->undone_steps);
        else
            snprintf(ev, sizeof ev, "relearn: %d steps of fine-tuning on %s recover %.0f%% of "
                     "the target's lead over the oracle on V (never half)", checkpoints[nk - 1],
                     on, 100 * last);
    }
    cJSON_AddStringToObject(o, "evidence", ev);
}

lethe_status audit_relearn(const audit_ctx *a, cJSON *eval, cJSON *sum)
{
    const lethe_audit_cfg *c = a->c;
    const size_t n = a->forget.n, K = (size_t)a->per_entity;
    const int S = c->seeds < 64 ? c->seeds : 64;
    if (n % K || n / K < 2)
        return lethe_fail(LETHE_ERR_INVALID, "%s: its %zu questions do not form at least two "
                          "entities of %zu questions (--per-entity)", c->split, n, K);
    const long E = (long)(n / K);
    pairs t = {0}, v = {0}, atk = {0};
    lethe_tofu retain = {0};
    lethe_lm_data d = {0};
    lethe_status st = LETHE_OK;
    long *ent = shuffled(E, 0);
    int *side = calloc((size_t)E, sizeof *side); /* 1: in T */
    if (!ent || !side)
        st = lethe_fail(LETHE_ERR_NOMEM, "out of memory");
    for (long i = 0; !st && i < E / 2; i++)
        side[ent[i]] = 1;
    size_t *v_row = malloc(sizeof *v_row * n);
    if (!st && !v_row)
        st = lethe_fail(LETHE_ERR_NOMEM, "out of memory");
    for (size_t r = 0; !st && r < n; r++) {
        if (!side[r / K])
            v_row[v.n] = r;
        if (!pairs_add(side[r / K] ? &t : &v, &a->forget.rows[r]))
            st = lethe_fail(LETHE_ERR_NOMEM, "out of memory");
    }
    if (!st && !strcmp(c->attack, "retain")) {
        st = audit_load_sibling(c, "retain", 1, &retain);
        long *o = st ? NULL : shuffled((long)retain.n, 1);
        if (!st && !o)
            st = lethe_fail(LETHE_ERR_NOMEM, "out of memory");
        for (size_t i = 0; !st && i < 10 && i < retain.n; i++)
            if (!pairs_add(&atk, &retain.rows[o[i]]))
                st = lethe_fail(LETHE_ERR_NOMEM, "out of memory");
        free(o);
    } else if (!st && !strcmp(c->attack, "related")) {
        st = related(a, &v, v_row, &atk);
    } else if (!st) {
        atk = t;
        memset(&t, 0, sizeof t);
    }
    if (!st && strcmp(c->attack, "related"))
        st = disjoint(&atk, &v);
    if (!st && !strcmp(c->attack, "related")) {
        size_t *len = malloc(sizeof *len * atk.n);
        for (size_t i = 0; len && i < atk.n; i++)
            len[i] = strlen(atk.q[i]);
        st = len ? lethe_lm_data_windows(a->run.tok, (int32_t)a->run.eot,
                                         a->run.model->cfg.n_positions, atk.q, len, atk.n,
                                         "the related text", &d)
                 : lethe_fail(LETHE_ERR_NOMEM, "out of memory");
        free(len);
    } else if (!st) {
        st = lethe_lm_data_build(a->run.tok, (int32_t)a->run.eot, a->run.model->cfg.n_positions,
                                 atk.q, atk.a, atk.n, "the attack set", &d);
    }
    int nk = 0;
    while (nk < N_CHECK && checkpoints[nk] <= c->max_steps)
        nk++;
    double *acc_m = calloc((size_t)S * N_CHECK, sizeof *acc_m);
    double *lp_m = calloc((size_t)S * N_CHECK, sizeof *lp_m);
    double *acc_o = calloc((size_t)S * N_CHECK, sizeof *acc_o);
    double *lp_o = calloc((size_t)S * N_CHECK, sizeof *lp_o);
    lethe_qa_score *buf = calloc(v.n ? v.n : 1, sizeof *buf);
    if (!st && (!acc_m || !lp_m || !acc_o || !lp_o || !buf))
        st = lethe_fail(LETHE_ERR_NOMEM, "out of memory");
    double acc_t = NAN, lp_t = NAN;
    if (!st)
        st = score_v(a->target.model, a, &v, buf, &acc_t, &lp_t);
    for (int s = 0; !st && s < S; s++) {
        audit_progress(a, "relearn: seed %d: the unlearned model, %d steps on %zu pairs", s,
                       checkpoints[nk - 1], atk.n);
        st = attack(a, a->run.model, &d.set, &v, (uint64_t)s, buf, acc_m + (long)s * N_CHECK,
                    lp_m + (long)s * N_CHECK);
        audit_progress(a, "relearn: seed %d: the oracle", s);
        if (!st)
            st = attack(a, a->oracle.model, &d.set, &v, (uint64_t)s, buf,
                        acc_o + (long)s * N_CHECK, lp_o + (long)s * N_CHECK);
    }
    if (!st) {
        cJSON *e = cJSON_AddObjectToObject(eval, "relearn");
        cJSON *ti = cJSON_CreateArray(), *vi = cJSON_CreateArray();
        for (long i = 0; i < E; i++)
            cJSON_AddItemToArray(side[i] ? ti : vi, cJSON_CreateNumber((double)i));
        cJSON_AddItemToObject(e, "T_entities", ti);
        cJSON_AddItemToObject(e, "V_entities", vi);
        audit_num(e, "target_accuracy", acc_t);
        audit_num(e, "target_logprob", lp_t);
        cJSON_AddItemToObject(e, "model", seeds_json(acc_m, lp_m, S, nk));
        cJSON_AddItemToObject(e, "oracle", seeds_json(acc_o, lp_o, S, nk));
        cJSON *o = cJSON_AddObjectToObject(sum, "relearn");
        cJSON_AddStringToObject(o, "attack", c->attack);
        cJSON_AddNumberToObject(o, "n_attack", (double)atk.n);
        cJSON_AddNumberToObject(o, "n_V", (double)v.n);
        cJSON_AddNumberToObject(o, "per_entity", (double)K);
        cJSON_AddBoolToObject(o, "disjoint", 1); /* checked above */
        cJSON_AddNumberToObject(o, "lr", c->lr);
        cJSON_AddNumberToObject(o, "batch", c->batch);
        cJSON_AddNumberToObject(o, "seeds", S);
        summarize(a, o, acc_m, lp_m, acc_o, lp_o, acc_t, S, nk);
    }
    free(buf);
    free(acc_m), free(lp_m), free(acc_o), free(lp_o);
    lethe_lm_data_free(&d);
    lethe_tofu_free(&retain);
    pairs_free(&t), pairs_free(&v), pairs_free(&atk);
    free(ent);
    free(side);
    free(v_row);
    return st;
}
