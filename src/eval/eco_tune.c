/* ECO's sigma tuned on a TOFU forget split (lethe/tofu.h,
 * lethe_eco_tune_tofu): zeroth-order search on the forget set's ROUGE-L
 * against the oracle's. */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include "lethe/authors.h"
#include "lethe/gpt_hf.h"
#include "lethe/guard_serve.h"
#include "lethe/stats.h"
#include "lethe/tofu.h"

void lethe_eco_tune_defaults(lethe_eco_tune_cfg *c)
{
    memset(c, 0, sizeof *c);
    c->split = "forget10";
    c->questions = 100;
    c->max_new = 64;
    lethe_eco_defaults(&c->eco);
    lethe_eco_zo_defaults(&c->zo);
}

/* What one evaluation needs: the questions, and who answers. */
typedef struct tune {
    const lethe_eco_tune_cfg *c;
    const lethe_gpt_dir *model;
    lethe_guard_t *gd;
    lethe_tofu *set; /* the questions and reference answers */
    size_t n;
    int evals;
} tune;

/* One answer: through a session (ECO) or plain greedy decoding. */
static lethe_status answer(const lethe_gpt_dir *m, const lethe_guard_serve_t *s, const char *q,
                           int max_new, char **text)
{
    char *p = NULL;
    *text = NULL;
    if (asprintf(&p, "Question: %s\nAnswer:", q) < 0)
        return lethe_fail(LETHE_ERR_NOMEM, "out of memory");
    lethe_status st;
    if (s) {
        lethe_guard_serve_result r;
        st = lethe_guard_serve_generate(s, p, strlen(p), max_new, (int32_t)m->eot, &r);
        if (st == LETHE_OK && !(*text = strdup(r.out.text)))
            st = lethe_fail(LETHE_ERR_NOMEM, "out of memory");
        lethe_guard_serve_result_free(&r);
    } else {
        /* greedy decoding, unguarded */
        uint32_t *u = NULL;
        size_t n = 0;
        st = lethe_tokenizer_encode(m->tok, p, strlen(p), &u, &n);
        int32_t *ids = st == LETHE_OK ? malloc(sizeof *ids * (n ? n : 1)) : NULL;
        if (st == LETHE_OK && !ids)
            st = lethe_fail(LETHE_ERR_NOMEM, "out of memory");
        for (size_t i = 0; ids && i < n; i++)
            ids[i] = (int32_t)u[i];
        lethe_guard_decode_opts o;
        lethe_guard_decode_defaults(&o);
        o.beam = 1, o.max_new = max_new, o.eos = (int32_t)m->eot;
        lethe_guard_decode_result r = {0};
        if (st == LETHE_OK)
            st = lethe_guard_decode(m->model, m->tok, NULL, ids, (int)n, &o, &r);
        if (st == LETHE_OK && !(*text = strdup(r.text)))
            st = lethe_fail(LETHE_ERR_NOMEM, "out of memory");
        lethe_guard_decode_result_free(&r);
        free(ids);
        free(u);
    }
    free(p);
    return st;
}

/* Mean ROUGE-L recall of the answers of m (through session s, or plain) to
 * the first n questions of set; the answers into out[] when not NULL. */
static lethe_status rouge_of(const lethe_gpt_dir *m, const lethe_guard_serve_t *s,
                             const lethe_tofu *set, size_t n, int max_new, char **out,
                             double *mean)
{
    lethe_status first = LETHE_OK;
    long first_i = -1;
    char detail[1024] = "";
    double *r = calloc(n ? n : 1, sizeof *r);
    if (!r)
        return lethe_fail(LETHE_ERR_NOMEM, "out of memory");
#pragma omp parallel for schedule(dynamic, 1)
    for (long i = 0; i < (long)n; i++) {
        char *text = NULL;
        lethe_rouge_score rs = {0};
        lethe_status st = answer(m, s, set->rows[i].question, max_new, &text);
        if (st == LETHE_OK)
            st = lethe_rouge_l(set->rows[i].answer, text, 1, &rs);
        r[i] = rs.recall;
        if (out) {
            free(out[i]);
            out[i] = text;
        } else {
            free(text);
        }
#pragma omp critical
        if (st && (first_i < 0 || i < first_i)) {
            first = st, first_i = i;
            snprintf(detail, sizeof detail, "%s", lethe_error_detail());
        }
    }
    double sum = 0;
    for (size_t i = 0; i < n; i++)
        sum += r[i];
    free(r);
    *mean = n ? sum / (double)n : 0;
    return first ? lethe_fail(first, "question %ld: %s", first_i + 1, detail) : LETHE_OK;
}

/* A session answering flagged prompts with ECO at strength sigma. */
static lethe_status session(const tune *t, double sigma, lethe_guard_serve_t **s)
{
    lethe_guard_serve_cfg sc;
    lethe_guard_serve_defaults(&sc);
    sc.mode = LETHE_GUARD_MODE_ECO;
    sc.eco = t->c->eco;
    sc.eco.sigma = sigma;
    return lethe_guard_serve_new(t->model->model, t->model->tok, t->gd, &sc, s);
}

static lethe_status metric(void *ctx, double sigma, double *m)
{
    tune *t = ctx;
    lethe_guard_serve_t *s = NULL;
    lethe_status st = session(t, sigma, &s);
    if (st == LETHE_OK)
        st = rouge_of(t->model, s, t->set, t->n, t->c->max_new, NULL, m);
    lethe_guard_serve_free(s);
    t->evals++;
    return st;
}

static lethe_status load_set(const lethe_eco_tune_cfg *c, const char *file, lethe_tofu *t)
{
    char path[4096];
    snprintf(path, sizeof path, "%s/%s", c->data, file);
    return lethe_tofu_load(path, t);
}

static lethe_status load_run(const char *dir, lethe_gpt_dir *d)
{
    lethe_status st = lethe_gpt_dir_load(dir, 1, d);
    if (st == LETHE_OK && (!d->tok || d->eot < 0)) {
        lethe_gpt_dir_free(d);
        st = lethe_fail(LETHE_ERR_FORMAT, "%s: needs a tokenizer with <|endoftext|>", dir);
    }
    return st;
}

static cJSON *report_json(const lethe_eco_tune_cfg *c, const lethe_eco_zo_report *r,
                          double oracle, double plain, double retain_plain, double retain_eco,
                          double changed, size_t n, int evals, double secs)
{
    cJSON *j = cJSON_CreateObject();
    cJSON_AddStringToObject(j, "split", c->split);
    cJSON_AddNumberToObject(j, "questions", (double)n);
    cJSON_AddStringToObject(j, "eco_fn", lethe_eco_fn_name(c->eco.fn));
    cJSON_AddNumberToObject(j, "eco_k", c->eco.k);
    cJSON_AddNumberToObject(j, "oracle_forget_rougeL", oracle);
    cJSON_AddNumberToObject(j, "model_forget_rougeL", plain);
    cJSON *steps = cJSON_AddArrayToObject(j, "steps");
    for (int i = 0; i < r->steps; i++) {
        cJSON *s = cJSON_CreateObject();
        cJSON_AddNumberToObject(s, "sigma", r->trace[i].sigma);
        cJSON_AddNumberToObject(s, "log_sigma_step", r->trace[i].eps);
        cJSON_AddNumberToObject(s, "rougeL_at_sigma_up", r->trace[i].m_plus);
        cJSON_AddNumberToObject(s, "rougeL_at_sigma_down", r->trace[i].m_minus);
        cJSON_AddItemToArray(steps, s);
    }
    cJSON_AddNumberToObject(j, "best_sigma", r->best_sigma);
    cJSON_AddNumberToObject(j, "best_forget_rougeL", r->best_m);
    cJSON_AddNumberToObject(j, "retain_rougeL_plain", retain_plain);
    cJSON_AddNumberToObject(j, "retain_rougeL_eco", retain_eco);
    cJSON_AddNumberToObject(j, "retain_answers_changed", changed);
    cJSON_AddNumberToObject(j, "evaluations", evals);
    cJSON_AddNumberToObject(j, "seconds", secs);
    return j;
}

lethe_status lethe_eco_tune_tofu(const lethe_eco_tune_cfg *c, cJSON **summary)
{
    *summary = NULL;
    if (!c->run || !c->guard || !c->oracle || !c->data || !c->split || strchr(c->split, '/') ||
        c->questions < 1 || c->max_new < 1)
        return lethe_fail(LETHE_ERR_INVALID, "eco tuning needs a run, its guard, an oracle, a "
                          "benchmark, a split name and at least one question");
    struct timespec t0;
    clock_gettime(CLOCK_MONOTONIC, &t0);
    lethe_gpt_dir m = {0}, orc = {0};
    lethe_tofu forget = {0}, retain = {0};
    tune t = {.c = c, .model = &m};
    char file[512];
    snprintf(file, sizeof file, "%s_perturbed.json", c->split);
    lethe_status st = load_run(c->run, &m);
    if (st == LETHE_OK)
        st = load_run(c->oracle, &orc);
    if (st == LETHE_OK)
        st = lethe_guard_load(c->guard, &t.gd);
    if (st == LETHE_OK)
        st = load_set(c, file, &forget);
    if (st == LETHE_OK)
        st = load_set(c, "retain_perturbed.json", &retain);
    lethe_guard_serve_t *s = NULL;
    if (st == LETHE_OK && (st = session(&t, c->eco.sigma, &s)) != LETHE_OK)
        st = lethe_fail(st, "%s: %s", c->guard, lethe_error_detail());
    lethe_guard_serve_free(s);
    s = NULL;
    size_t n = forget.n < (size_t)c->questions ? forget.n : (size_t)c->questions;
    size_t nr = retain.n < (size_t)c->questions ? retain.n : (size_t)c->questions;
    double oracle = 0, plain = 0, rp = 0, re = 0, changed = 0;
    lethe_eco_zo_report rep = {0};
    char **a_plain = calloc(nr + 1, sizeof *a_plain), **a_eco = calloc(nr + 1, sizeof *a_eco);
    if (st == LETHE_OK && (!a_plain || !a_eco))
        st = lethe_fail(LETHE_ERR_NOMEM, "out of memory");
    if (st == LETHE_OK)
        st = rouge_of(&orc, NULL, &forget, n, c->max_new, NULL, &oracle);
    if (st == LETHE_OK)
        st = rouge_of(&m, NULL, &forget, n, c->max_new, NULL, &plain);
    t.set = &forget, t.n = n;
    lethe_eco_zo_cfg zo = c->zo;
    zo.target = oracle;
    if (st == LETHE_OK)
        st = lethe_eco_zo_tune(&zo, metric, &t, &rep);
    /* the retain answers at the best sigma, against the unguarded ones */
    if (st == LETHE_OK)
        st = rouge_of(&m, NULL, &retain, nr, c->max_new, a_plain, &rp);
    if (st == LETHE_OK)
        st = session(&t, rep.best_sigma, &s);
    if (st == LETHE_OK)
        st = rouge_of(&m, s, &retain, nr, c->max_new, a_eco, &re);
    for (size_t i = 0; st == LETHE_OK && i < nr; i++)
        changed += strcmp(a_plain[i], a_eco[i]) != 0;
    struct timespec t1;
    clock_gettime(CLOCK_MONOTONIC, &t1);
    double secs = (double)(t1.tv_sec - t0.tv_sec) + 1e-9 * (double)(t1.tv_nsec - t0.tv_nsec);
    if (st == LETHE_OK && !(*summary = report_json(c, &rep, oracle, plain, rp, re,
                                                   nr ? changed / (double)nr : 0, n,
                                                   t.evals, secs)))
        st = lethe_fail(LETHE_ERR_NOMEM, "out of memory");
    for (size_t i = 0; i < nr && a_plain && a_eco; i++)
        free(a_plain[i]), free(a_eco[i]);
    free(a_plain);
    free(a_eco);
    lethe_guard_serve_free(s);
    lethe_guard_free(t.gd);
    lethe_tofu_free(&forget);
    lethe_tofu_free(&retain);
    lethe_gpt_dir_free(&orc);
    lethe_gpt_dir_free(&m);
    return st;
}
