/* TOFU's experiment end to end (lethe/tofu_pipeline.h): its stage graph on
 * the pipeline engine (pipeline_impl.h). */
#include "lethe/tofu_pipeline.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "lethe/authors.h"
#include "lethe/fileio.h"
#include "lethe/gpt_train.h"
#include "lethe/run.h"
#include "lethe/tofu.h"
#include "pipeline_impl.h"

#define MAX_INPUTS 8

void lethe_tofu_pipeline_defaults(lethe_tofu_pipeline_cfg *c)
{
    lethe_authors_opts a;
    lethe_authors_defaults(&a);
    *c = (lethe_tofu_pipeline_cfg){.work = "tofu-work", .split = "forget10",
                                   .method = "npo_gdr", .preset = "tiny", .corpora = "moby",
                                   .authors = a.n_authors, .qa = a.n_qa, .base_epochs = 2,
                                   .know_epochs = 30, .reps = 3, .sft_epochs = 20,
                                   .sft_lr = 3e-3, .unlearn_lr = 1e-4, .whp_epochs = 10,
                                   .max_new = 200, .jobs = 2};
}

/* ---- the stages' runs ----------------------------------------------------------- */

static lethe_status write_benchmark(pl_stage *s, FILE *log)
{
    lethe_status st = lethe_authors_write(s->dir, s->ctx);
    if (st == LETHE_OK)
        fprintf(log, "wrote the benchmark to %s\n", s->dir);
    return st;
}

static lethe_status evaluate(pl_stage *s, const lethe_gpt_logits_proc *logits,
                             const cJSON *note, cJSON **summary)
{
    lethe_tofu_run_cfg e = *(const lethe_tofu_run_cfg *)s->ctx;
    e.logits = logits, e.note = note;
    return lethe_tofu_run(&e, summary);
}

static void event(void *ctx, const pl_stage *s, int done, int together)
{
    const lethe_tofu_pipeline_cfg *c = ctx;
    c->event(c->event_ctx, &(lethe_pipeline_stage_info){s->name, s->dir, s->log, done, together,
                                                   s->seconds});
}

/* ---- inputs --------------------------------------------------------------------- */

/* Write path: the question and answer of every row of the TOFU-layout files
 * DIR/files[i], reps[i] times over, in TOFU's layout. Written only when its
 * content changes. */
static lethe_status write_pairs(const char *path, const char *dir, const char *const *files,
                                const long *reps, int n_files)
{
    lethe_status st = LETHE_OK;
    char *buf = NULL;
    size_t len = 0;
    FILE *m = open_memstream(&buf, &len);
    if (!m)
        return lethe_fail(LETHE_ERR_NOMEM, "out of memory");
    for (int f = 0; f < n_files && st == LETHE_OK; f++) {
        lethe_tofu t = {0};
        char p[4200];
        snprintf(p, sizeof p, "%s/%s", dir, files[f]);
        st = lethe_tofu_load(p, &t);
        for (long r = 0; r < reps[f]; r++)
            for (size_t i = 0; st == LETHE_OK && i < t.n; i++) {
                cJSON *j = cJSON_CreateObject();
                char *line = NULL;
                if (j && cJSON_AddStringToObject(j, "question", t.rows[i].question) &&
                    cJSON_AddStringToObject(j, "answer", t.rows[i].answer))
                    line = cJSON_PrintUnformatted(j);
                if (line)
                    fprintf(m, "%s\n", line);
                else
                    st = lethe_fail(LETHE_ERR_NOMEM, "out of memory");
                free(line);
                cJSON_Delete(j);
            }
        lethe_tofu_free(&t);
    }
    fclose(m);
    if (st == LETHE_OK) {
        unsigned char *old;
        size_t old_len;
        if (lethe_file_read(path, &old, &old_len) == LETHE_OK) {
            int same = old_len == len && !memcmp(old, buf, len);
            free(old);
            if (same) {
                free(buf);
                return LETHE_OK;
            }
        }
        lethe_error_clear();
        st = lethe_file_write_atomic(path, buf, len);
    }
    free(buf);
    return st;
}

/* ---- the summary ---------------------------------------------------------------- */

static cJSON *summary(const lethe_tofu_pipeline_cfg *c, const char *name, const pl_pipeline *p,
                      const pl_stage *const evals[3], const pl_stage *const models[3])
{
    static const char *const rows[] = {"target", "oracle", "unlearned"};
    static const char *const metrics[] = {"forget_quality", "model_utility",
                                          "forget_rougeL_recall", "forget_prob",
                                          "forget_truth_ratio"};
    cJSON *j = cJSON_CreateObject(), *ms = cJSON_AddObjectToObject(j, "models"),
          *times = cJSON_AddObjectToObject(j, "seconds");
    cJSON_AddStringToObject(j, "split", c->split);
    pl_summary_head(j, c->method, name, c->preset, c->seed, c->unlearn_args, c->n_unlearn_args);
    for (int r = 0; r < 3; r++)
        pl_summary_model(ms, rows[r], models[r]->dir, evals[r]->dir, "TOFU_SUMMARY.json",
                         metrics, 5);
    pl_summary_seconds(j, times, p);
    return j;
}

/* ---- the pipeline ----------------------------------------------------------------- */

static lethe_status check_cfg(const lethe_tofu_pipeline_cfg *c, const char *name, int *pct)
{
    if (!c->work || !c->split || !c->method || !c->preset || !c->corpora)
        return lethe_fail(LETHE_ERR_INVALID, "the pipeline needs a work directory, a split, "
                          "a method, a preset and corpora");
    *pct = strncmp(c->split, "forget", 6) ? 0 : atoi(c->split + 6);
    if (*pct < 1 || *pct > 99 || strlen(c->split) != 8)
        return lethe_fail(LETHE_ERR_INVALID, "the split is forgetXX with XX from 01 to 99, "
                          "not '%s'", c->split);
    if (strchr(name, '/') || !*name || name[0] == '.')
        return lethe_fail(LETHE_ERR_INVALID, "the unlearned run's name '%s' is not a "
                          "directory name", name);
    if (c->authors < LETHE_AUTHORS_MIN || c->authors > LETHE_AUTHORS_MAX || c->qa < 1 ||
        c->qa > LETHE_AUTHORS_QA_MAX || c->base_epochs < 1 || c->base_steps < 0 ||
        c->know_epochs < 1 || c->reps < 0 || c->sft_epochs < 1 || c->whp_epochs < 1 ||
        c->max_new < 1 || c->jobs < 1 || c->threads < 0 || !(c->sft_lr > 0) ||
        !(c->unlearn_lr > 0))
        return lethe_fail(LETHE_ERR_INVALID, "a pipeline setting is out of range");
    lethe_lm_cfg m;
    return pl_check_method(c->method, &m);
}


/* An sft stage on `from` over the pairs in `file`. */
static pl_stage *sft_stage(pl_pipeline *p, const lethe_tofu_pipeline_cfg *c, const char *name,
                           const char *dir, const pl_stage *from, const char *file, long epochs)
{
    pl_stage *s = pl_stage_new(p, PL_UNLEARN, name, dir);
    if (!s || lethe_lm_run_init(&s->unlearn, "sft") != LETHE_OK)
        return NULL;
    lethe_lm_run_cfg *r = &s->unlearn;
    r->run = from->dir, r->out = dir, r->forget = file;
    r->sched.epochs = (int)epochs;
    r->sched.lr = (float)c->sft_lr;
    r->sched.seed = c->seed;
    r->sched.quiet = 1;
    pl_depend(s, from);
    pl_input(s, file);
    return s;
}

/* The evaluation of `model` against the oracle; with whp, of the target's
 * logits adjusted by the reinforced model `model`. */
static pl_stage *eval_stage(pl_pipeline *p, const lethe_tofu_pipeline_cfg *c, const char *data,
                            const char *label, const pl_stage *model, const pl_stage *target,
                            const pl_stage *oracle, int whp)
{
    pl_stage *s = pl_stage_new(p, PL_EVAL, pl_fmt(p, "%s-eval-%s", c->split, label),
                               pl_fmt(p, "%s/eval-%s", model->dir, c->split));
    lethe_tofu_run_cfg *e = s ? pl_alloc(p, sizeof *e) : NULL;
    if (!e)
        return NULL;
    s->eval = evaluate, s->ctx = e;
    lethe_tofu_run_defaults(e);
    e->run = whp ? target->dir : model->dir;
    e->data = data, e->split = c->split, e->oracle = oracle->dir, e->out = s->dir;
    e->t.max_new = c->max_new;
    pl_set_str(s, "run", e->run);
    pl_set_str(s, "data", data);
    pl_set_str(s, "split", c->split);
    pl_set_str(s, "oracle", oracle->dir);
    pl_set_num(s, "max_new", c->max_new);
    pl_eval_of(s, model, target, oracle, whp);
    static const char *const sets[] = {"%s/%s_perturbed.json", "%s/retain_perturbed.json",
                                       "%s/real_authors_perturbed.json",
                                       "%s/world_facts_perturbed.json"};
    for (int f = 0; f < 4; f++) {
        const char *path = f ? pl_fmt(p, sets[f], data) : pl_fmt(p, sets[0], data, c->split);
        if (!path)
            return NULL;
        pl_input(s, path);
    }
    return s;
}

/* The stages up to the unlearned model's evaluation, from the benchmark in
 * data; the three evaluated models and their evaluations into models[] and
 * evals[]. */
static lethe_status build(pl_pipeline *p, const lethe_tofu_pipeline_cfg *c, const char *name,
                          int pct, const char *data, const pl_stage *models[3],
                          const pl_stage *evals[3])
{
    const char *w = c->work;
    char retain[64];
    snprintf(retain, sizeof retain, "retain%02d.json", 100 - pct);
    /* the fine-tuning files: the general knowledge alone, and mixed into the
     * authors' pairs of target and oracle */
    const char *files[] = {"full.json", "real_authors_perturbed.json",
                           "world_facts_perturbed.json"};
    const char *knowledge = pl_fmt(p, "%s/knowledge.json", w);
    const char *tfile = pl_fmt(p, "%s/target.json", w);
    const char *split_dir = pl_fmt(p, "%s/%s", w, c->split);
    const char *ofile = pl_fmt(p, "%s/%s/oracle.json", w, c->split);
    long once[] = {1, 1}, mixed[] = {1, c->reps, c->reps};
    lethe_status st;
    if (!knowledge || !tfile || !ofile || !split_dir)
        return lethe_fail(LETHE_ERR_NOMEM, "out of memory");
    if ((st = lethe_run_mkdir(split_dir)) != LETHE_OK ||
        (st = write_pairs(knowledge, data, files + 1, once, 2)) != LETHE_OK ||
        (st = write_pairs(tfile, data, files, mixed, 3)) != LETHE_OK)
        return st;
    files[0] = retain;
    if ((st = write_pairs(ofile, data, files, mixed, 3)) != LETHE_OK)
        return st;

    const pl_stage *base = pl_train_stage(p, "base", pl_fmt(p, "%s/base", w), c->corpora,
                                          c->preset, c->seed, c->base_epochs, c->base_steps);
    /* target and oracle start from the model that knows the general knowledge */
    const pl_stage *kn = base ? sft_stage(p, c, "knowledge", pl_fmt(p, "%s/knowledge", w), base,
                                          knowledge, c->know_epochs)
                              : NULL;
    const pl_stage *tg = kn ? sft_stage(p, c, "target", pl_fmt(p, "%s/target", w), kn, tfile,
                                        c->sft_epochs)
                            : NULL;
    const pl_stage *orc = tg ? sft_stage(p, c, pl_fmt(p, "%s-oracle", c->split),
                                         pl_fmt(p, "%s/%s/oracle", w, c->split), kn, ofile,
                                         c->sft_epochs)
                             : NULL;
    if (!orc)
        return lethe_fail(LETHE_ERR_NOMEM, "out of memory");

    /* WHP's stage is the reinforced model (the fine-tune Task Vector also
     * makes); its evaluation is the target's logits adjusted by it */
    const int whp = pl_not_stored(c->method);
    const pl_unlearn_opts uo = {c->method, c->unlearn_lr, c->seed, c->whp_epochs, c->unlearn};
    pl_stage *un;
    if ((st = pl_unlearn_stage(p, pl_fmt(p, "%s-%s", c->split, name),
                               pl_fmt(p, "%s/%s/%s", w, c->split, name), tg, &uo,
                               pl_fmt(p, "%s/%s.json", data, c->split),
                               pl_fmt(p, "%s/%s", data, retain),
                               pl_fmt(p, "%s/idontknow.jsonl", data), &un)) != LETHE_OK)
        return st;

    models[0] = tg, models[1] = orc, models[2] = un;
    static const char *const label[2] = {"target", "oracle"};
    for (int i = 0; i < 3; i++)
        if (!(evals[i] = eval_stage(p, c, data, i < 2 ? label[i] : name, models[i], tg, orc,
                                    i == 2 && whp)))
            return lethe_fail(LETHE_ERR_NOMEM, "out of memory");
    return LETHE_OK;
}

static lethe_status run_pipeline(pl_pipeline *p, const lethe_tofu_pipeline_cfg *c,
                                 lethe_tofu_pipeline_result *res)
{
    const char *name = c->name ? c->name : c->method;
    int pct = 0;
    lethe_status st = check_cfg(c, name, &pct);
    if (st == LETHE_OK)
        st = pl_logs(p);
    if (st != LETHE_OK)
        return st;
    /* the benchmark: generated (a stage, run first) or given */
    const char *data = c->data ? c->data : pl_fmt(p, "%s/data", c->work);
    if (!c->data) {
        pl_stage *s = pl_stage_new(p, PL_DATA, "data", data);
        lethe_authors_opts *a = s ? pl_alloc(p, sizeof *a) : NULL;
        if (!a)
            return lethe_fail(LETHE_ERR_NOMEM, "out of memory");
        *a = (lethe_authors_opts){.n_authors = c->authors, .n_qa = (int)c->qa, .seed = c->seed,
                                  .force = 1, .quiet = 1};
        s->data = write_benchmark, s->ctx = a;
        pl_set_num(s, "authors", (double)c->authors);
        pl_set_num(s, "qa", (double)c->qa);
        pl_set_num(s, "seed", (double)c->seed);
        if ((st = pl_key(p, 0)) != LETHE_OK || (st = pl_run(p)) != LETHE_OK)
            return st;
    }
    int first = p->n;
    const pl_stage *models[3], *evals[3];
    if ((st = build(p, c, name, pct, data, models, evals)) != LETHE_OK ||
        (st = pl_key(p, first)) != LETHE_OK || (st = pl_run(p)) != LETHE_OK)
        return st;

    cJSON *sum = summary(c, name, p, evals, models);
    snprintf(res->path, sizeof res->path, "%s/TOFU_PIPELINE.json", models[2]->dir);
    if ((st = pl_write_summary(res->path, sum)) != LETHE_OK)
        return st;
    res->summary = sum;
    res->n_stages = p->n;
    LETHE_ASSERT(p->n <= LETHE_TOFU_MAX_STAGES);
    for (int i = 0; i < p->n; i++)
        pl_stage_row(p, i, res->stages[i].name, sizeof res->stages[i].name,
                     &res->stages[i].seconds, &res->stages[i].kept);
    return LETHE_OK;
}

lethe_status lethe_tofu_pipeline_run(const lethe_tofu_pipeline_cfg *c,
                                     lethe_tofu_pipeline_result *res)
{
    memset(res, 0, sizeof *res);
    pl_pipeline *p = pl_new(c->work, c->jobs, c->threads, c->event ? event : NULL, (void *)c);
    lethe_status st = p ? run_pipeline(p, c, res) : lethe_fail(LETHE_ERR_NOMEM, "out of memory");
    pl_free(p);
    return st;
}
