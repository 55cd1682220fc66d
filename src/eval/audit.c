/* The robustness audit (lethe/audit.h): loading the models and the split,
 * the verdicts, the files. The probes are audit_relearn.c, audit_quant.c,
 * audit_prompts.c and audit_incontext.c. */
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "audit_int.h"
#include "lethe/gpt_generate.h"
#include "lethe/guard_serve.h"
#include "lethe/json.h"
#include "lethe/lm_unlearn.h"
#include "lethe/run.h"
#include "lethe/stats.h"

void lethe_audit_defaults(lethe_audit_cfg *c)
{
    memset(c, 0, sizeof *c);
    c->attack = "forget";
    c->max_steps = 100;
    c->seeds = 3;
    c->batch = 8;
    c->lr = 1e-4;
    c->undone_steps = 100;
    c->group = 64;
    c->max_new = 200;
    c->context = 2;
    c->shots = 3;
}

void audit_progress(const audit_ctx *a, const char *fmt, ...)
{
    if (!a->c->progress)
        return;
    va_list ap;
    va_start(ap, fmt);
    fprintf(a->c->progress, "audit: ");
    vfprintf(a->c->progress, fmt, ap);
    fputc('\n', a->c->progress);
    fflush(a->c->progress);
    va_end(ap);
}

double audit_mean(const double *x, int n)
{
    double s = 0.0;
    for (int i = 0; i < n; i++)
        s += x[i];
    return n ? s / n : NAN;
}

double audit_sd(const double *x, int n)
{
    if (n < 2)
        return 0.0;
    double m = audit_mean(x, n), s = 0.0;
    for (int i = 0; i < n; i++)
        s += (x[i] - m) * (x[i] - m);
    return sqrt(s / (n - 1));
}

void audit_not_run(cJSON *sum, const char *name, int verdict, const char *why)
{
    char ev[512];
    cJSON *o = cJSON_AddObjectToObject(sum, name);
    if (verdict)
        cJSON_AddNullToObject(o, "verdict");
    snprintf(ev, sizeof ev, "%s: not run: %s", name, why);
    cJSON_AddStringToObject(o, "evidence", ev);
}

void audit_num(cJSON *o, const char *key, double v)
{
    if (isfinite(v))
        cJSON_AddNumberToObject(o, key, v);
    else
        cJSON_AddNullToObject(o, key);
}

cJSON *audit_array(const double *x, int n)
{
    cJSON *a = cJSON_CreateArray();
    for (int i = 0; a && i < n; i++)
        cJSON_AddItemToArray(a, isfinite(x[i]) ? cJSON_CreateNumber(x[i]) : cJSON_CreateNull());
    return a;
}

lethe_status audit_greedy(const audit_ctx *a, const lethe_gpt *g, const char *prompt,
                          int max_new, char **text)
{
    uint32_t *ids = NULL;
    size_t n = 0, len = 0;
    lethe_gen_opts o;
    lethe_gen_defaults(&o);
    o.max_new = max_new;
    o.eos = (int32_t)a->run.eot;
    lethe_gen_result r = {0};
    *text = NULL;
    lethe_status st = lethe_tokenizer_encode(a->run.tok, prompt, strlen(prompt), &ids, &n);
    if (!st && (n < 1 || n > (size_t)g->cfg.n_positions))
        st = lethe_fail(LETHE_ERR_INVALID, "a prompt of %zu tokens does not fit the model's "
                        "context of %d", n, g->cfg.n_positions);
    if (!st) {
        o.max_new = (int)((size_t)max_new < g->cfg.n_positions - n ? (size_t)max_new
                                                                  : g->cfg.n_positions - n);
        st = lethe_gpt_generate(g, (const int32_t *)ids, (int)n, &o, &r);
    }
    int kept = r.n - (r.n > 0 && r.tokens[r.n - 1] == (int32_t)a->run.eot);
    if (!st)
        st = lethe_tokenizer_decode(a->run.tok, (const uint32_t *)r.tokens, (size_t)kept,
                                    (unsigned char **)text, &len);
    free(ids);
    lethe_gen_result_free(&r);
    return st;
}

lethe_status audit_guarded(const audit_ctx *a, const struct lethe_guard_serve *gs,
                           const char *prompt, int max_new, const char *gold, int *flagged,
                           double *recall)
{
    lethe_guard_serve_result r;
    lethe_status st = lethe_guard_serve_generate(gs, prompt, strlen(prompt), max_new,
                                                 (int32_t)a->run.eot, &r);
    if (!st) {
        *flagged = r.flagged;
        *recall = r.out.refused ? 0.0 : audit_recall(gold, r.out.text);
    }
    lethe_guard_serve_result_free(&r);
    return st;
}

double audit_recall(const char *gold, const char *text)
{
    lethe_rouge_score r;
    return lethe_rouge_l(gold, text ? text : "", 0, &r) == LETHE_OK ? r.recall : NAN;
}

/* Load dir into d: a GPT run with a tokenizer holding <|endoftext|>, and
 * (when ref is not NULL) the same tokenizer as ref's. */
static lethe_status load(const char *dir, const char *role, const lethe_gpt_dir *ref,
                         lethe_gpt_dir *d)
{
    lethe_status st = lethe_gpt_dir_load(dir, 1, d);
    if (st)
        return lethe_fail(st, "the %s: %s", role, lethe_error_detail());
    if (!d->tok || d->eot < 0)
        return lethe_fail(LETHE_ERR_FORMAT, "%s: the audit needs the %s's tokenizer with an "
                          "<|endoftext|> token", dir, role);
    if (!ref)
        return LETHE_OK;
    char *a = NULL, *b = NULL;
    if (lethe_tokenizer_to_json(ref->tok, &a) || lethe_tokenizer_to_json(d->tok, &b))
        st = lethe_fail(LETHE_ERR_NOMEM, "out of memory");
    else if (strcmp(a, b) || ref->eot != d->eot ||
             ref->model->cfg.vocab_size != d->model->cfg.vocab_size)
        st = lethe_fail(LETHE_ERR_FORMAT, "%s: the %s's tokenizer is not the unlearned model's",
                        dir, role);
    free(a);
    free(b);
    return st;
}

/* The benchmark's questions per entity: manifest.json's qa_per_author, or 20. */
static int per_entity(const lethe_audit_cfg *c)
{
    if (c->per_entity > 0)
        return c->per_entity;
    char path[4096];
    cJSON *m = NULL;
    int k = 20;
    snprintf(path, sizeof path, "%s/manifest.json", c->data);
    FILE *f = fopen(path, "r");
    if (f && (fclose(f), lethe_json_read(path, &m) == LETHE_OK)) {
        const cJSON *q = cJSON_GetObjectItemCaseSensitive(m, "qa_per_author");
        if (cJSON_IsNumber(q) && q->valuedouble >= 1 && q->valuedouble <= 1e6)
            k = (int)q->valuedouble;
    }
    cJSON_Delete(m);
    return k;
}

lethe_status audit_load_split(const lethe_audit_cfg *c, const char *suffix, lethe_tofu *t)
{
    char path[4096];
    snprintf(path, sizeof path, "%s/%s%s.json", c->data, c->split, suffix);
    FILE *f = fopen(path, "r");
    if (!f)
        return lethe_fail(LETHE_ERR_INVALID, "%s: no such split in %s", c->split, c->data);
    fclose(f);
    return lethe_tofu_load(path, t);
}

lethe_status audit_load_sibling(const lethe_audit_cfg *c, const char *prefix, int complement,
                                lethe_tofu *t)
{
    char *end, name[64];
    long k = strncmp(c->split, "forget", 6) ? -1 : strtol(c->split + 6, &end, 10);
    if (k < 1 || k > 99 || *end)
        return lethe_fail(LETHE_ERR_INVALID, "this probe needs a split forgetNN (with its %s "
                          "split), not '%s'", prefix, c->split);
    snprintf(name, sizeof name, "%s%02ld", prefix, complement ? 100 - k : k);
    lethe_audit_cfg rc = *c;
    rc.split = name;
    return audit_load_split(&rc, "", t);
}

/* The method the unlearned run was made with (its config.json), or NULL. */
static char *run_method(const char *run)
{
    char path[4096];
    cJSON *j = NULL;
    char *m = NULL;
    snprintf(path, sizeof path, "%s/config.json", run);
    FILE *f = fopen(path, "r");
    if (f && (fclose(f), lethe_json_read(path, &j) == LETHE_OK)) {
        const cJSON *u = cJSON_GetObjectItemCaseSensitive(j, "unlearn");
        const cJSON *s = cJSON_GetObjectItemCaseSensitive(u ? u : j, "method");
        if (cJSON_IsString(s))
            m = strdup(s->valuestring);
    }
    cJSON_Delete(j);
    return m;
}

/* The overall verdict and the method's intent, into sum. */
static void verdict(const audit_ctx *a, cJSON *sum)
{
    int suppression = 0, any = 0;
    cJSON *ev = cJSON_CreateArray();
    for (cJSON *p = sum->child; p; p = p->next) {
        const cJSON *v = cJSON_GetObjectItemCaseSensitive(p, "verdict");
        const cJSON *e = cJSON_GetObjectItemCaseSensitive(p, "evidence");
        if (!cJSON_IsString(v))
            continue;
        any = 1;
        suppression |= !strcmp(v->valuestring, "suppression");
        if (cJSON_IsString(e))
            cJSON_AddItemToArray(ev, cJSON_CreateString(e->valuestring));
    }
    cJSON_AddStringToObject(sum, "verdict", !any ? "none" : suppression ? "suppression"
                                                                       : "removal");
    cJSON_AddItemToObject(sum, "evidence", ev);
    char *m = run_method(a->c->run);
    const lethe_lm_method_def *d = NULL;
    lethe_lm_cfg cfg;
    if (m && lethe_lm_parse(m, &cfg) == LETHE_OK)
        d = lethe_lm_method_def_of(cfg.method);
    if (m)
        cJSON_AddStringToObject(sum, "method", m);
    else
        cJSON_AddNullToObject(sum, "method");
    if (d && any && strcmp(d->intent, "none")) {
        cJSON_AddStringToObject(sum, "intent", d->intent);
        cJSON_AddBoolToObject(sum, "matches_intent",
                              !strcmp(d->intent, suppression ? "suppression" : "removal"));
    } else {
        if (d)
            cJSON_AddStringToObject(sum, "intent", d->intent);
        else
            cJSON_AddNullToObject(sum, "intent");
        cJSON_AddNullToObject(sum, "matches_intent");
    }
    free(m);
}

lethe_status lethe_audit_run(const lethe_audit_cfg *c, unsigned probes, cJSON **summary)
{
    if (summary)
        *summary = NULL;
    if (!c->run || !c->target || !c->oracle || !c->data || !c->split || strchr(c->split, '/'))
        return lethe_fail(LETHE_ERR_INVALID, "an audit needs the unlearned model, the target, "
                          "the oracle, a benchmark and a split name");
    if (!probes || (probes & ~LETHE_AUDIT_ALL))
        return lethe_fail(LETHE_ERR_INVALID, "no probe to run");
    if (c->seeds < 1 || c->batch < 1 || !(c->lr > 0) || c->max_steps < 0 || c->max_new < 1 ||
        c->undone_steps < 0 || c->shots < 0)
        return lethe_fail(LETHE_ERR_INVALID, "the audit's settings are out of range");
    if (strcmp(c->attack, "forget") && strcmp(c->attack, "retain") &&
        strcmp(c->attack, "related"))
        return lethe_fail(LETHE_ERR_INVALID, "the relearning attack is 'forget', 'retain' or "
                          "'related', not '%s'", c->attack);
    audit_ctx a = {.c = c, .per_entity = per_entity(c)};
    /* --out first, so a bad one fails before minutes of probes (without it
       the files go into the unlearned model's run, which loading checks) */
    const char *dir = c->out ? c->out : c->run;
    lethe_status st = c->out ? lethe_run_mkdir(c->out) : LETHE_OK;
    if (!st)
        st = load(c->run, "unlearned model", NULL, &a.run);
    if (!st)
        st = load(c->target, "target", &a.run, &a.target);
    if (!st)
        st = load(c->oracle, "oracle", &a.run, &a.oracle);
    if (!st)
        st = audit_load_split(c, "", &a.forget);
    cJSON *eval = cJSON_CreateObject(), *sum = cJSON_CreateObject();
    if (!st && (!eval || !sum))
        st = lethe_fail(LETHE_ERR_NOMEM, "out of memory");
    if (!st) {
        cJSON *s = cJSON_CreateObject();
        cJSON_AddStringToObject(s, "run", c->run);
        cJSON_AddStringToObject(s, "target", c->target);
        cJSON_AddStringToObject(s, "oracle", c->oracle);
        cJSON_AddStringToObject(s, "data", c->data);
        cJSON_AddStringToObject(s, "split", c->split);
        cJSON_AddItemToObject(sum, "settings", s);
    }
    if (!st && (probes & LETHE_AUDIT_RELEARN))
        st = audit_relearn(&a, eval, sum);
    if (!st && (probes & LETHE_AUDIT_QUANTIZE))
        st = audit_quantize(&a, eval, sum);
    if (!st && (probes & LETHE_AUDIT_PROMPTS))
        st = audit_prompts(&a, eval, sum);
    if (!st && (probes & LETHE_AUDIT_INCONTEXT))
        st = audit_incontext(&a, eval, sum);
    if (!st && (probes & LETHE_AUDIT_PROBE))
        st = audit_latent(&a, eval, sum);
    if (!st && (probes & LETHE_AUDIT_NEIGHBOURS))
        st = audit_neighbours(&a, eval, sum);
    if (!st)
        verdict(&a, sum);
    if (!st)
        st = lethe_json_write(dir, "AUDIT_EVAL.json", eval);
    if (!st)
        st = lethe_json_write(dir, "AUDIT_SUMMARY.json", sum);
    if (!st && summary) {
        *summary = sum;
        sum = NULL;
    }
    cJSON_Delete(eval);
    cJSON_Delete(sum);
    lethe_tofu_free(&a.forget);
    lethe_gpt_dir_free(&a.run);
    lethe_gpt_dir_free(&a.target);
    lethe_gpt_dir_free(&a.oracle);
    return st;
}
