/* `lethe guard fit` as a library call: TOFU's files in, a guard file out
 * (lethe/guard_fit.h). */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "fit_muse.h"
#include "lethe/authors.h"
#include "lethe/gpt_hf.h"
#include "lethe/guard_fit.h"
#include "lethe/json.h"
#include "lethe/rundir.h"

void lethe_guard_fit_files_defaults(lethe_guard_fit_files_cfg *c)
{
    *c = (lethe_guard_fit_files_cfg){.split = "forget10"};
    lethe_guard_fit_defaults(&c->fit);
}

/* The caller's targets: a JSON array of names or of {"name", "aliases"}. */
typedef struct targets {
    cJSON *json;
    lethe_guard_target_spec *t;
    const char **strs; /* every alias pointer, into json */
    size_t n;
} targets;

static void targets_free(targets *t)
{
    cJSON_Delete(t->json);
    free(t->t);
    free(t->strs);
}

static lethe_status targets_load(const char *path, targets *t)
{
    lethe_status st = lethe_json_read(path, &t->json);
    if (st != LETHE_OK)
        return st;
    if (!cJSON_IsArray(t->json) || !cJSON_GetArraySize(t->json))
        return lethe_fail(LETHE_ERR_FORMAT, "%s: not a non-empty JSON array of targets", path);
    size_t n = (size_t)cJSON_GetArraySize(t->json), n_str = 0;
    const cJSON *e;
    cJSON_ArrayForEach(e, t->json) n_str += (size_t)cJSON_GetArraySize(
        cJSON_GetObjectItemCaseSensitive(e, "aliases"));
    t->t = calloc(n, sizeof *t->t);
    t->strs = malloc(sizeof *t->strs * (n_str ? n_str : 1));
    if (!t->t || !t->strs)
        return lethe_fail(LETHE_ERR_NOMEM, "out of memory");
    size_t i = 0, k = 0;
    cJSON_ArrayForEach(e, t->json)
    {
        lethe_guard_target_spec *s = &t->t[i++];
        if (cJSON_IsString(e)) {
            s->name = e->valuestring;
            continue;
        }
        const cJSON *name = cJSON_GetObjectItemCaseSensitive(e, "name");
        const cJSON *al = cJSON_GetObjectItemCaseSensitive(e, "aliases");
        if (!cJSON_IsString(name) || (al && !cJSON_IsArray(al)))
            return lethe_fail(LETHE_ERR_FORMAT, "%s: target %zu is neither a name nor an object "
                              "with a string \"name\" and an array \"aliases\"", path, i - 1);
        s->name = name->valuestring;
        s->aliases = t->strs + k;
        const cJSON *a;
        cJSON_ArrayForEach(a, al)
        {
            if (!cJSON_IsString(a))
                return lethe_fail(LETHE_ERR_FORMAT, "%s: target %zu: an alias that is not a "
                                  "string", path, i - 1);
            t->strs[k++] = a->valuestring;
            s->n_aliases++;
        }
    }
    t->n = n;
    return LETHE_OK;
}

/* Forget and retain pairs as lethe_guard_fit wants them. */
typedef struct pairs {
    lethe_tofu forget, retain, eval;
    const char **fq, **fa, **fp, **rq, **ra, **rp, **more;
    size_t n_retain, excluded;
} pairs;

static void pairs_free(pairs *p)
{
    for (size_t i = 0; p->fp && i < p->forget.n; i++)
        free((char *)p->fp[i]);
    for (size_t i = 0; p->rp && i < p->n_retain; i++)
        free((char *)p->rp[i]);
    free(p->fq), free(p->fa), free(p->fp), free(p->rq), free(p->ra), free(p->rp);
    free(p->more);
    lethe_tofu_free(&p->forget), lethe_tofu_free(&p->retain), lethe_tofu_free(&p->eval);
}

static char *tofu_prompt(const char *q)
{
    char *s = NULL;
    return asprintf(&s, "Question: %s\nAnswer:", q) < 0 ? NULL : s;
}

static int in_eval(const lethe_tofu *ev, const char *q)
{
    for (size_t i = 0; i < ev->n; i++)
        if (!strcmp(ev->rows[i].question, q))
            return 1;
    return 0;
}

static lethe_status pairs_load(const char *data, const char *split, pairs *p, char *paths[3])
{
    int pct;
    char tail;
    if (sscanf(split, "forget%d%c", &pct, &tail) != 1 || pct < 1 || pct > 99 ||
        strlen(split) != 8)
        return lethe_fail(LETHE_ERR_INVALID, "guard fit: split '%s' is not forgetXX (01 to 99)",
                          split);
    if (asprintf(&paths[0], "%s/%s.json", data, split) < 0 ||
        asprintf(&paths[1], "%s/retain%02d.json", data, 100 - pct) < 0 ||
        asprintf(&paths[2], "%s/retain_perturbed.json", data) < 0)
        return lethe_fail(LETHE_ERR_NOMEM, "out of memory");
    lethe_status st = lethe_tofu_load(paths[0], &p->forget);
    if (st == LETHE_OK)
        st = lethe_tofu_load(paths[1], &p->retain);
    FILE *f = fopen(paths[2], "rb"); /* optional */
    if (f)
        fclose(f);
    if (st == LETHE_OK && f)
        st = lethe_tofu_load(paths[2], &p->eval);
    if (st != LETHE_OK)
        return st;
    size_t nf = p->forget.n, nr = p->retain.n;
    p->fq = calloc(nf + 1, sizeof *p->fq), p->fa = calloc(nf + 1, sizeof *p->fa);
    p->fp = calloc(nf + 1, sizeof *p->fp);
    p->rq = calloc(nr + 1, sizeof *p->rq), p->ra = calloc(nr + 1, sizeof *p->ra);
    p->rp = calloc(nr + 1, sizeof *p->rp), p->more = calloc(2 * nr + 1, sizeof *p->more);
    if (!p->fq || !p->fa || !p->fp || !p->rq || !p->ra || !p->rp || !p->more)
        return lethe_fail(LETHE_ERR_NOMEM, "out of memory");
    for (size_t i = 0; i < nf; i++) {
        p->fq[i] = p->forget.rows[i].question, p->fa[i] = p->forget.rows[i].answer;
        if (!(p->fp[i] = tofu_prompt(p->fq[i])))
            return lethe_fail(LETHE_ERR_NOMEM, "out of memory");
    }
    for (size_t i = 0; i < nr; i++) {
        const lethe_tofu_row *r = &p->retain.rows[i];
        if (in_eval(&p->eval, r->question)) {
            p->more[2 * p->excluded] = r->question, p->more[2 * p->excluded + 1] = r->answer;
            p->excluded++;
            continue;
        }
        size_t k = p->n_retain;
        p->rq[k] = r->question, p->ra[k] = r->answer;
        if (!(p->rp[k] = tofu_prompt(r->question)))
            return lethe_fail(LETHE_ERR_NOMEM, "out of memory");
        p->n_retain++;
    }
    return LETHE_OK;
}

/* What the summary says of the pairs read. */
typedef struct pair_counts {
    const char *layout;
    size_t forget, retain, excluded;
} pair_counts;

static cJSON *summary_json(const lethe_guard_fit_files_cfg *c, const lethe_guard_t *g,
                           const lethe_guard_fit_summary *s, const pair_counts *p,
                           char *paths[3])
{
    cJSON *j = cJSON_CreateObject();
    cJSON_AddStringToObject(j, "guard", c->out);
    cJSON_AddStringToObject(j, "model_hash", lethe_guard_model_hash(g));
    cJSON_AddStringToObject(j, "layout", p->layout);
    cJSON_AddStringToObject(j, "forget", paths[0]);
    cJSON_AddStringToObject(j, "retain", paths[1]);
    cJSON_AddNumberToObject(j, "forget_pairs", (double)p->forget);
    cJSON_AddNumberToObject(j, "retain_pairs", (double)p->retain);
    cJSON_AddNumberToObject(j, "retain_excluded", (double)p->excluded);
    cJSON_AddBoolToObject(j, "excluded_in_ngrams", !c->eval_out_of_ngrams);
    cJSON_AddStringToObject(j, "targets_from", !strcmp(p->layout, "muse") ? "forget documents"
                                               : c->targets ? c->targets : "derived");
    cJSON_AddNumberToObject(j, "targets", (double)s->targets);
    cJSON_AddNumberToObject(j, "answers", (double)s->answers);
    cJSON_AddNumberToObject(j, "unassigned", (double)s->unassigned);
    cJSON_AddNumberToObject(j, "ngrams", (double)s->ngrams);
    cJSON_AddNumberToObject(j, "retain_ngrams", (double)s->retain_ngrams);
    cJSON_AddStringToObject(j, "features", c->fit.hash_features ? "hash" : "model");
    cJSON_AddNumberToObject(j, "fit_negatives", (double)s->fit_neg);
    cJSON_AddNumberToObject(j, "calibration_negatives", (double)s->calib_neg);
    cJSON_AddNumberToObject(j, "lbfgs_iterations", s->clf.iters);
    cJSON_AddBoolToObject(j, "converged", s->clf.converged);
    cJSON_AddNumberToObject(j, "alpha", c->fit.alpha);
    cJSON_AddNumberToObject(j, "tau", s->tau);
    cJSON_AddNumberToObject(j, "tpr_forget", s->tpr_forget);
    cJSON_AddNumberToObject(j, "fpr_fit", s->fpr_fit);
    cJSON_AddNumberToObject(j, "fpr_calibration", s->fpr_calib);
    return j;
}

lethe_status lethe_guard_fit_files(const lethe_guard_fit_files_cfg *c, cJSON **summary)
{
    *summary = NULL;
    if (!c->run || !c->data || !c->out)
        return lethe_fail(LETHE_ERR_INVALID, "guard fit: a run, a data directory and an "
                          "output path are required");
    const char *inputs[] = {c->run, c->data, c->targets};
    lethe_status st = lethe_outfile_check(c->out, c->force, inputs, 3);
    if (st != LETHE_OK)
        return st;
    pairs p = {0};
    targets t = {0};
    char *paths[3] = {0};
    lethe_gpt_dir dir = {0};
    lethe_guard_t *g = NULL;
    lethe_guard_fit_summary s;
    guard_muse mu = {0};
    lethe_guard_fit_data d;
    pair_counts pc;
    if (guard_fit_is_muse(c->data)) {
        if (c->targets)
            return lethe_fail(LETHE_ERR_INVALID, "guard fit: MUSE's targets are its forget "
                              "documents; --targets is for TOFU's layout");
        st = guard_muse_load(c->data, &mu, paths);
        d = (lethe_guard_fit_data){
            .forget_q = (const char *const *)mu.fq, .forget_a = (const char *const *)mu.fa,
            .n_forget = mu.nf, .retain_q = (const char *const *)mu.rq,
            .retain_a = (const char *const *)mu.ra, .n_retain = mu.nr, .targets = mu.t,
            .n_targets = mu.nt, .forget_owner = mu.owner, .more_retain = mu.more,
            .n_more_retain = c->eval_out_of_ngrams ? 0 : mu.n_more};
        pc = (pair_counts){"muse", mu.nf, mu.nr, mu.excluded};
    } else {
        st = pairs_load(c->data, c->split ? c->split : "forget10", &p, paths);
        if (st == LETHE_OK && c->targets)
            st = targets_load(c->targets, &t);
        d = (lethe_guard_fit_data){
            .forget_q = p.fq, .forget_a = p.fa, .forget_prompt = p.fp, .n_forget = p.forget.n,
            .retain_q = p.rq, .retain_a = p.ra, .retain_prompt = p.rp, .n_retain = p.n_retain,
            .targets = t.t, .n_targets = t.n, .more_retain = p.more,
            .n_more_retain = c->eval_out_of_ngrams ? 0 : 2 * p.excluded};
        pc = (pair_counts){"tofu", p.forget.n, p.n_retain, p.excluded};
    }
    if (st == LETHE_OK)
        st = lethe_gpt_dir_load(c->run, 1, &dir);
    if (st == LETHE_OK && !dir.tok)
        st = lethe_fail(LETHE_ERR_FORMAT, "%s has no tokenizer", c->run);
    lethe_guard_fit_cfg fc = c->fit;
    if (!fc.model_name)
        fc.model_name = c->run;
    if (st == LETHE_OK)
        st = lethe_guard_fit(dir.model, dir.tok, &d, &fc, &g, &s);
    if (st == LETHE_OK)
        st = lethe_guard_save(g, c->out);
    if (st == LETHE_OK && !(*summary = summary_json(c, g, &s, &pc, paths)))
        st = lethe_fail(LETHE_ERR_NOMEM, "out of memory");
    lethe_guard_free(g);
    lethe_gpt_dir_free(&dir);
    targets_free(&t);
    pairs_free(&p);
    guard_muse_free(&mu);
    free(paths[0]), free(paths[1]), free(paths[2]);
    return st;
}
