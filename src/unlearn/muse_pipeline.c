/* MUSE's experiment end to end (lethe/muse_pipeline.h): its stage graph on
 * the pipeline engine (pipeline_impl.h). */
#include "lethe/muse_pipeline.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "lethe/muse.h"
#include "lethe/muse_eval.h"
#include "pipeline_impl.h"

void lethe_muse_pipeline_defaults(lethe_muse_pipeline_cfg *c)
{
    *c = (lethe_muse_pipeline_cfg){.work = "muse-work", .corpus = LETHE_MUSE_NEWS,
                                   .method = "npo_gdr", .preset = "tiny", .forget = 10,
                                   .retain = 10, .holdout = 10, .max_words = -1,
                                   .target_epochs = 200, .target_lr = 3e-3,
                                   .unlearn_lr = 1e-3, .unlearn_epochs = 10, .whp_epochs = 10,
                                   .folds = 1, .jobs = 2};
}

static const char *corpus_name(lethe_muse_corpus c) { return c == LETHE_MUSE_NEWS ? "news" : "books"; }

/* ---- the stages' runs ----------------------------------------------------------- */

static lethe_status write_corpus(pl_stage *s, FILE *log)
{
    lethe_status st = lethe_muse_write(s->dir, s->ctx);
    if (st == LETHE_OK)
        fprintf(log, "wrote the corpora to %s\n", s->dir);
    return st;
}

static lethe_status evaluate(pl_stage *s, const lethe_gpt_logits_proc *logits,
                             const cJSON *note, cJSON **summary)
{
    lethe_muse_eval_cfg e = *(const lethe_muse_eval_cfg *)s->ctx;
    e.logits = logits, e.note = note;
    return lethe_muse_eval_run(&e, summary);
}

static void event(void *ctx, const pl_stage *s, int done, int together)
{
    const lethe_muse_pipeline_cfg *c = ctx;
    c->event(c->event_ctx, &(lethe_pipeline_stage_info){s->name, s->dir, s->log, done, together,
                                                   s->seconds});
}

/* ---- the stages ----------------------------------------------------------------- */

static lethe_status check_cfg(const lethe_muse_pipeline_cfg *c, const char *name)
{
    if (!c->work || !c->method || !c->preset)
        return lethe_fail(LETHE_ERR_INVALID, "the pipeline needs a work directory, a method "
                          "and a preset");
    if (c->corpus != LETHE_MUSE_NEWS && c->corpus != LETHE_MUSE_BOOKS)
        return lethe_fail(LETHE_ERR_INVALID, "the corpus is news or books");
    if (strchr(name, '/') || !*name || name[0] == '.')
        return lethe_fail(LETHE_ERR_INVALID, "the unlearned run's name '%s' is not a "
                          "directory name", name);
    if (c->target_epochs < 1 || c->target_steps < 0 || !(c->target_lr > 0) ||
        c->unlearn_epochs < 1 ||
        c->whp_epochs < 1 || c->verbmem_max_new < 0 || c->knowmem_max_new < 0 ||
        c->jobs < 1 || c->threads < 0 || !(c->unlearn_lr > 0))
        return lethe_fail(LETHE_ERR_INVALID, "a pipeline setting is out of range");
    lethe_lm_cfg m;
    lethe_status st = pl_check_method(c->method, &m);
    return st == LETHE_OK ? lethe_lm_format_check(&m, LETHE_LM_FORMAT_TEXT) : st;
}

/* The evaluation `label` of `model` (with whp: of the target's logits
 * adjusted by the reinforced model `model`) against the oracle. */
static pl_stage *eval_stage(pl_pipeline *p, const lethe_muse_pipeline_cfg *c, const char *data,
                            const char *label, const pl_stage *model, const pl_stage *target,
                            const pl_stage *oracle, int whp)
{
    pl_stage *s = pl_stage_new(p, PL_EVAL, pl_fmt(p, "%s-eval-%s", corpus_name(c->corpus), label),
                               pl_fmt(p, "%s/eval", model->dir));
    lethe_muse_eval_cfg *e = s ? pl_alloc(p, sizeof *e) : NULL;
    if (!e)
        return NULL;
    s->eval = evaluate, s->ctx = e;
    lethe_muse_eval_defaults(e);
    e->run = whp ? target->dir : model->dir;
    e->data = data, e->oracle = oracle->dir, e->out = s->dir;
    if (c->verbmem_max_new)
        e->verbmem_max_new = c->verbmem_max_new;
    if (c->knowmem_max_new)
        e->knowmem_max_new = c->knowmem_max_new;
    pl_set_str(s, "run", e->run);
    pl_set_str(s, "data", data);
    pl_set_str(s, "oracle", oracle->dir);
    pl_set_num(s, "verbmem_max_new", e->verbmem_max_new);
    pl_set_num(s, "knowmem_max_new", e->knowmem_max_new);
    pl_set_num(s, "mink", e->mink);
    pl_set_num(s, "criteria", LETHE_MUSE_EVAL_VERSION);
    pl_eval_of(s, model, target, oracle, whp);
    static const char *const sets[] = {
        "verbmem/forget.json",  "knowmem/forget_qa.json", "knowmem/forget_qa_icl.json",
        "knowmem/retain_qa.json", "knowmem/retain_qa_icl.json", "privleak/forget.json",
        "privleak/retain.json", "privleak/holdout.json"};
    for (int f = 0; f < 8; f++) {
        const char *path = pl_fmt(p, "%s/%s", data, sets[f]);
        if (!path)
            return NULL;
        pl_input(s, path);
    }
    return s;
}

/* A GPT trained under w/label on data with the target's recipe, every
 * document trained on (none held out for validation). */
static pl_stage *model_stage(pl_pipeline *p, const lethe_muse_pipeline_cfg *c, const char *w,
                             const char *label, const char *data)
{
    pl_stage *s = data ? pl_train_stage(p, pl_fmt(p, "%s-%s", corpus_name(c->corpus), label),
                                        pl_fmt(p, "%s/%s", w, label), data, c->preset, c->seed,
                                        c->target_epochs, c->target_steps)
                       : NULL;
    if (s) {
        s->train.val = 0;
        s->train.lr = (float)c->target_lr;
        s->train.shift = 1; /* the passages are evaluated from position 0 */
        pl_set_num(s, "val", 0);
        pl_set_num(s, "shift", 1);
        pl_set_num(s, "lr", c->target_lr);
    }
    return s;
}

/* The stages from the corpus in data: target, oracle, the unlearned model
 * and the folds (news), each evaluated; into models[] and evals[] target,
 * oracle and unlearned, then scal 2..4 and sust 2..4, and their count. */
static lethe_status build(pl_pipeline *p, const lethe_muse_pipeline_cfg *c, const char *name,
                          const char *data, const pl_stage **models, const pl_stage **evals,
                          int *n_evals)
{
    const char *cn = corpus_name(c->corpus), *w = pl_fmt(p, "%s/%s", c->work, cn);
    const char *forget = pl_fmt(p, "%s/raw/forget.jsonl", data);
    const char *retain = pl_fmt(p, "%s/raw/retain1.jsonl", data);
    if (!w || !forget || !retain)
        return lethe_fail(LETHE_ERR_NOMEM, "out of memory");
    const pl_stage *tg = model_stage(p, c, w, "target", pl_fmt(p, "%s,%s", forget, retain));
    pl_stage *orc = tg ? model_stage(p, c, w, "oracle", retain) : NULL;
    /* the oracle reads the target's tokenizer, as MUSE's models share Llama's:
     * PrivLeak compares their token likelihoods */
    if (!orc || !(orc->train.tokenizer = pl_fmt(p, "%s/tokenizer.json", tg->dir)))
        return lethe_fail(LETHE_ERR_NOMEM, "out of memory");
    pl_set_str(orc, "tokenizer", orc->train.tokenizer);
    pl_depend(orc, tg);

    /* MUSE's schedule: a constant rate, no warm-up */
    const int whp = pl_not_stored(c->method);
    const pl_unlearn_opts uo = {c->method, c->unlearn_lr, c->seed, c->whp_epochs, c->unlearn,
                                c->unlearn_epochs, 1};
    pl_stage *un;
    lethe_status st = pl_unlearn_stage(p, pl_fmt(p, "%s-%s", cn, name),
                                       pl_fmt(p, "%s/%s", w, name), tg, &uo, forget, retain,
                                       NULL, &un);
    if (st != LETHE_OK)
        return st;
    models[0] = tg, models[1] = orc, models[2] = un;
    const char *labels[] = {"target", "oracle", name};
    int n = 0;
    for (; n < 3; n++)
        if (!(evals[n] = eval_stage(p, c, data, labels[n], models[n], tg, orc, n == 2 && whp)))
            return lethe_fail(LETHE_ERR_NOMEM, "out of memory");
    /* scal K: the target unlearned on folds 1..K; sust K: the run of K - 1
     * unlearned on fold K. Fold 1 of both is the forget set: the unlearned
     * model above. */
    static const char *const kinds[] = {"scal", "sust"};
    for (int k = 0; c->corpus == LETHE_MUSE_NEWS && c->folds && k < 2; k++) {
        const pl_stage *from = un;
        for (int f = 2; f <= LETHE_MUSE_FOLDS; f++) {
            const char *label = pl_fmt(p, "%s-%s%d", name, kinds[k], f);
            pl_stage *s;
            if (!label)
                return lethe_fail(LETHE_ERR_NOMEM, "out of memory");
            if ((st = pl_unlearn_stage(p, pl_fmt(p, "%s-%s", cn, label),
                                       pl_fmt(p, "%s/%s", w, label), k ? from : tg, &uo,
                                       pl_fmt(p, "%s/%s/forget_%d.jsonl", data, kinds[k], f),
                                       retain, NULL, &s)) != LETHE_OK)
                return st;
            models[n] = from = s;
            if (!(evals[n++] = eval_stage(p, c, data, label, s, tg, orc, whp)))
                return lethe_fail(LETHE_ERR_NOMEM, "out of memory");
        }
    }
    *n_evals = n;
    return LETHE_OK;
}

/* ---- the summary ---------------------------------------------------------------- */

static cJSON *summary(const lethe_muse_pipeline_cfg *c, const char *name, const pl_pipeline *p,
                      const pl_stage *const *models, const pl_stage *const *evals, int n_evals)
{
    static const char *const rows[] = {"target", "oracle", "unlearned"};
    static const char *const metrics[] = {"forget_verbmem_ROUGE", "forget_knowmem_ROUGE",
                                          "retain_knowmem_ROUGE", "retain_verbmem_ROUGE",
                                          "privleak"};
    cJSON *j = cJSON_CreateObject(), *ms = cJSON_AddObjectToObject(j, "models");
    cJSON_AddStringToObject(j, "corpus", corpus_name(c->corpus));
    pl_summary_head(j, c->method, name, c->preset, c->seed, c->unlearn_args, c->n_unlearn_args);
    for (int r = 0; r < 3; r++)
        pl_summary_model(ms, rows[r], models[r]->dir, evals[r]->dir, "MUSE_SUMMARY.json",
                         metrics, 5);
    /* fold K of scal and sust; fold 1 is the unlearned model */
    for (int k = 0; n_evals > 3 && k < 2; k++) {
        cJSON *folds = cJSON_AddObjectToObject(j, k ? "sust" : "scal");
        for (int f = 1; f <= LETHE_MUSE_FOLDS; f++) {
            int i = f == 1 ? 2 : 3 + k * (LETHE_MUSE_FOLDS - 1) + f - 2;
            char row[32];
            snprintf(row, sizeof row, "forget_%d", f);
            pl_summary_model(folds, row, models[i]->dir, evals[i]->dir, "MUSE_SUMMARY.json",
                             metrics, 5);
        }
    }
    pl_summary_seconds(j, cJSON_AddObjectToObject(j, "seconds"), p);
    return j;
}

/* ---- the pipeline ----------------------------------------------------------------- */

static lethe_status run_pipeline(pl_pipeline *p, const lethe_muse_pipeline_cfg *c,
                                 lethe_muse_pipeline_result *res)
{
    const char *name = c->name ? c->name : c->method;
    lethe_status st = check_cfg(c, name);
    if (st == LETHE_OK)
        st = pl_logs(p);
    if (st != LETHE_OK)
        return st;
    /* the corpus: generated (a stage, run first) or given */
    const char *cn = corpus_name(c->corpus);
    const char *data = c->data ? c->data : pl_fmt(p, "%s/%s/data", c->work, cn);
    if (!c->data) {
        pl_stage *s = pl_stage_new(p, PL_DATA, pl_fmt(p, "%s-data", cn), data);
        lethe_muse_opts *o = s ? pl_alloc(p, sizeof *o) : NULL;
        if (!o)
            return lethe_fail(LETHE_ERR_NOMEM, "out of memory");
        lethe_muse_defaults(c->corpus, o);
        o->seed = c->seed, o->n_forget = c->forget, o->n_retain = c->retain;
        o->n_holdout = c->holdout, o->force = 1, o->quiet = 1;
        /* books' chapters hold fewer cloze sentences than addresses: 400
         * words a chapter give retain1 too few questions for the in-context
         * examples */
        o->max_words = c->max_words >= 0 ? c->max_words
                                         : c->corpus == LETHE_MUSE_NEWS ? 400 : 800;
        if ((st = lethe_muse_check(o)) != LETHE_OK)
            return st;
        s->data = write_corpus, s->ctx = o;
        pl_set_str(s, "corpus", cn);
        pl_set_num(s, "seed", (double)o->seed);
        pl_set_num(s, "forget", (double)o->n_forget);
        pl_set_num(s, "retain", (double)o->n_retain);
        pl_set_num(s, "holdout", (double)o->n_holdout);
        pl_set_num(s, "max_words", (double)o->max_words);
        if ((st = pl_key(p, 0)) != LETHE_OK || (st = pl_run(p)) != LETHE_OK)
            return st;
    }
    int first = p->n, n_evals = 0;
    const pl_stage *models[3 + 2 * (LETHE_MUSE_FOLDS - 1)], *evals[3 + 2 * (LETHE_MUSE_FOLDS - 1)];
    if ((st = build(p, c, name, data, models, evals, &n_evals)) != LETHE_OK ||
        (st = pl_key(p, first)) != LETHE_OK || (st = pl_run(p)) != LETHE_OK)
        return st;

    cJSON *sum = summary(c, name, p, models, evals, n_evals);
    snprintf(res->path, sizeof res->path, "%s/MUSE_PIPELINE.json", models[2]->dir);
    if ((st = pl_write_summary(res->path, sum)) != LETHE_OK)
        return st;
    res->summary = sum;
    res->n_stages = p->n;
    LETHE_ASSERT(p->n <= LETHE_MUSE_MAX_STAGES);
    for (int i = 0; i < p->n; i++)
        pl_stage_row(p, i, res->stages[i].name, sizeof res->stages[i].name,
                     &res->stages[i].seconds, &res->stages[i].kept);
    return LETHE_OK;
}

lethe_status lethe_muse_pipeline_run(const lethe_muse_pipeline_cfg *c,
                                     lethe_muse_pipeline_result *res)
{
    memset(res, 0, sizeof *res);
    pl_pipeline *p = pl_new(c->work, c->jobs, c->threads, c->event ? event : NULL, (void *)c);
    lethe_status st = p ? run_pipeline(p, c, res) : lethe_fail(LETHE_ERR_NOMEM, "out of memory");
    pl_free(p);
    return st;
}
