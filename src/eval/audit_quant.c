/* The audit's quantization probe (lethe/audit.h, "quantize"): the forget
 * split's TOFU metrics of target, unlearned model and oracle in F32 and
 * rounded to 8 and 4 bits. */
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "audit_int.h"
#include "lethe/gpt_quant.h"
#include "lethe/lm_unlearn.h"
#include "lethe/tofu.h"

static const int precisions[] = {32, 8, 4};
enum { N_PREC = 3, N_MODELS = 3 };
static const char *const model_names[N_MODELS] = {"target", "model", "oracle"};

/* g at the given precision: g itself (32), or a quantized copy in *own. */
static lethe_status at_bits(const lethe_gpt *g, int bits, int group, lethe_gpt **own,
                            const lethe_gpt **out)
{
    *own = NULL;
    *out = g;
    if (bits == 32)
        return LETHE_OK;
    lethe_gpt_quant *q = NULL;
    lethe_gpt *m = lethe_lm_clone(g);
    lethe_status st = m ? lethe_gpt_quantize(m, bits, group, &q)
                        : lethe_fail(LETHE_ERR_NOMEM, "out of memory");
    if (st) {
        lethe_gpt_free(m);
        return st;
    }
    lethe_gpt_quant_apply(q, m);
    lethe_gpt_quant_attach(m, q);
    *own = m;
    *out = m;
    return LETHE_OK;
}

/* The standard error of the mean of one measure over the questions. */
static double std_error(const lethe_tofu_set *s, int rouge)
{
    double *x = malloc(sizeof *x * (s->n ? s->n : 1));
    if (!x)
        return NAN;
    for (size_t i = 0; i < s->n; i++)
        x[i] = rouge ? s->samples[i].rouge_l : s->samples[i].prob;
    double se = audit_sd(x, (int)s->n) / sqrt((double)s->n);
    free(x);
    return se;
}

static cJSON *set_json(const lethe_tofu_set *s, double fq)
{
    cJSON *o = cJSON_CreateObject();
    audit_num(o, "forget_prob", s->prob);
    audit_num(o, "forget_rougeL_recall", s->rouge_l);
    audit_num(o, "forget_truth_ratio", s->truth_ratio);
    audit_num(o, "forget_quality", fq);
    return o;
}

/* A share as a percentage for the evidence (no "-0"). */
static double pct(double x) { return fabs(x) < 0.005 ? 0.0 : 100.0 * x; }

/* (x - base) / (target - base); NaN unless unlearning took at least 0.05
 * off the target's measure (below that, rounding noise decides the ratio). */
static double ret(double x, double base, double target)
{
    return target - base >= 0.05 ? (x - base) / (target - base) : NAN;
}

lethe_status audit_quantize(const audit_ctx *a, cJSON *eval, cJSON *sum)
{
    const lethe_audit_cfg *c = a->c;
    const lethe_gpt_dir *dirs[N_MODELS] = {&a->target, &a->run, &a->oracle};
    lethe_tofu rows = {0};
    lethe_tofu_set res[N_MODELS][N_PREC];
    memset(res, 0, sizeof res);
    lethe_status st = lethe_gpt_quant_check(&a->run.model->cfg, 8, c->group);
    for (int m = 1; !st && m < N_MODELS; m++)
        st = lethe_gpt_quant_check(&dirs[m]->model->cfg, 8, c->group);
    if (!st)
        st = audit_load_split(c, "_perturbed", &rows);
    lethe_qa *items = st ? NULL : calloc(rows.n ? rows.n : 1, sizeof *items);
    if (!st && !items)
        st = lethe_fail(LETHE_ERR_NOMEM, "out of memory");
    for (size_t i = 0; !st && i < rows.n; i++) {
        const lethe_tofu_row *r = &rows.rows[i];
        items[i] = (lethe_qa){r->question, r->answer, r->paraphrased_answer,
                              (const char *const *)r->perturbed, (int)r->n_perturbed,
                              r->paraphrased_question};
    }
    lethe_tofu_opts o;
    lethe_tofu_defaults(&o);
    o.max_new = c->max_new;
    for (int m = 0; !st && m < N_MODELS; m++)
        for (int p = 0; !st && p < N_PREC; p++) {
            lethe_gpt *own = NULL;
            const lethe_gpt *g = NULL;
            audit_progress(a, "quantize: the %s at %d bits", model_names[m], precisions[p]);
            st = at_bits(dirs[m]->model, precisions[p], c->group, &own, &g);
            if (!st)
                st = lethe_tofu_eval_set(g, a->run.tok, (int32_t)a->run.eot, items, rows.n,
                                         LETHE_TOFU_FORGET, &o, &res[m][p]);
            lethe_gpt_free(own);
        }
    double fq[N_MODELS][N_PREC];
    for (int m = 0; !st && m < N_MODELS; m++)
        for (int p = 0; p < N_PREC; p++)
            if (lethe_tofu_forget_quality(&res[m][p], &res[2][0], &fq[m][p]) != LETHE_OK)
                fq[m][p] = NAN;
    if (!st) {
        cJSON *e = cJSON_AddObjectToObject(eval, "quantize");
        cJSON *s = cJSON_AddObjectToObject(sum, "quantize");
        cJSON_AddNumberToObject(s, "group", c->group);
        cJSON_AddNumberToObject(s, "max_new", c->max_new);
        for (int m = 0; m < N_MODELS; m++) {
            cJSON *em = cJSON_AddObjectToObject(e, model_names[m]);
            cJSON *sm = cJSON_AddObjectToObject(s, model_names[m]);
            for (int p = 0; p < N_PREC; p++) {
                char key[16];
                snprintf(key, sizeof key, p ? "int%d" : "f32", precisions[p]);
                cJSON_AddItemToObject(sm, key, set_json(&res[m][p], fq[m][p]));
                cJSON *per = cJSON_CreateArray();
                for (size_t i = 0; i < res[m][p].n; i++) {
                    cJSON *q = cJSON_CreateObject();
                    audit_num(q, "prob", res[m][p].samples[i].prob);
                    audit_num(q, "rougeL_recall", res[m][p].samples[i].rouge_l);
                    audit_num(q, "truth_ratio", res[m][p].samples[i].truth_ratio);
                    cJSON_AddItemToArray(per, q);
                }
                cJSON_AddItemToObject(em, key, per);
            }
        }
        /* the noise: the target's standard errors over the questions */
        audit_num(s, "target_prob_se", std_error(&res[0][0], 0));
        audit_num(s, "target_rougeL_se", std_error(&res[0][0], 1));
        const double bp = res[1][0].prob, br = res[1][0].rouge_l;
        const double tp = res[0][0].prob, tr = res[0][0].rouge_l;
        double r8p = ret(res[1][1].prob, bp, tp), r4p = ret(res[1][2].prob, bp, tp);
        double r8r = ret(res[1][1].rouge_l, br, tr), r4r = ret(res[1][2].rouge_l, br, tr);
        audit_num(s, "return_int8_prob", r8p);
        audit_num(s, "return_int4_prob", r4p);
        audit_num(s, "return_int8_rougeL", r8r);
        audit_num(s, "return_int4_rougeL", r4r);
        char ev[512];
        if (isnan(r4p) && isnan(r4r)) {
            cJSON_AddNullToObject(s, "verdict");
            snprintf(ev, sizeof ev, "quantize: undecided: unlearning took less than 0.05 off "
                     "the target's forget probability (%.3f, %.3f) and ROUGE-L (%.3f, %.3f), so "
                     "there is nothing for rounding to bring back", tp, bp, tr, br);
        } else {
            int supp = (!isnan(r4p) && r4p >= 0.5) || (!isnan(r4r) && r4r >= 0.5);
            cJSON_AddStringToObject(s, "verdict", supp ? "suppression" : "removal");
            snprintf(ev, sizeof ev, "quantize: 4 bits bring back %.0f%% of the forgotten "
                     "probability and %.0f%% of the forgotten ROUGE-L (8 bits: %.0f%%, %.0f%%; "
                     "suppression from 50%%)", pct(r4p), pct(r4r), pct(r8p), pct(r8r));
        }
        cJSON_AddStringToObject(s, "evidence", ev);
    }
    for (int m = 0; m < N_MODELS; m++)
        for (int p = 0; p < N_PREC; p++)
            lethe_tofu_set_free(&res[m][p]);
    free(items);
    lethe_tofu_free(&rows);
    return st;
}
