/* A TOFU evaluation run (lethe/tofu.h, docs/tofu.md): the four evaluation
 * sets of a benchmark on a GPT run, Forget Quality against an oracle, Model
 * Utility, written as TOFU_EVAL.json and TOFU_SUMMARY.json. */
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <cjson/cJSON.h>

#include "lethe/authors.h"
#include "lethe/fileio.h"
#include "lethe/json.h"
#include "lethe/gpt_hf.h"
#include "lethe/guard_serve.h"
#include "lethe/lm_mia.h"
#include "lethe/run.h"
#include "lethe/tofu.h"

/* The evaluation sets: name in the files, file (with %s for the split). */
static const struct {
    const char *name, *file;
    int kind;
} sets[] = {
    {"forget", "%s_perturbed.json", LETHE_TOFU_FORGET},
    {"retain", "retain_perturbed.json", LETHE_TOFU_RETAIN},
    {"real_authors", "real_authors_perturbed.json", LETHE_TOFU_FACTS},
    {"world_facts", "world_facts_perturbed.json", LETHE_TOFU_FACTS},
};
enum { N_SETS = sizeof sets / sizeof sets[0] };

void lethe_tofu_run_defaults(lethe_tofu_run_cfg *c)
{
    memset(c, 0, sizeof *c);
    lethe_tofu_defaults(&c->t);
    lethe_eco_defaults(&c->guard_eco);
    c->mia_k = 0.4;
}

/* Items pointing into the rows of t. */
static lethe_qa *as_items(const lethe_tofu *t)
{
    lethe_qa *q = calloc(t->n ? t->n : 1, sizeof *q);
    for (size_t i = 0; q && i < t->n; i++) {
        const lethe_tofu_row *r = &t->rows[i];
        q[i] = (lethe_qa){r->question, r->answer, r->paraphrased_answer,
                          (const char *const *)r->perturbed, (int)r->n_perturbed,
                          r->paraphrased_question};
    }
    return q;
}

/* A guarded model's answer to a TOFU question (a lethe_tofu_answerer). */
static lethe_status guard_answer(void *ctx, const char *question, int max_new, int32_t eot,
                                 char **text, int *flagged, int *refused)
{
    char *p = NULL;
    *text = NULL;
    if (asprintf(&p, "Question: %s\nAnswer:", question) < 0)
        return lethe_fail(LETHE_ERR_NOMEM, "out of memory");
    lethe_guard_serve_result r;
    lethe_status st = lethe_guard_serve_generate(ctx, p, strlen(p), max_new, eot, &r);
    if (st == LETHE_OK && !(*text = strdup(r.out.text)))
        st = lethe_fail(LETHE_ERR_NOMEM, "out of memory");
    *flagged = r.flagged, *refused = r.out.refused;
    lethe_guard_serve_result_free(&r);
    free(p);
    return st;
}

/* ALU's answer to a TOFU question (a lethe_tofu_answerer): its agents over
 * the endpoint, or over the evaluated model in this process; the question
 * goes as the user's message, and the chat template makes TOFU's prompt of
 * it. Calls, tokens and the stages reached are counted per set. */
typedef struct alu_count {
    long queries, calls, prompt_tokens, completion_tokens;
    long stages[LETHE_ALU_REFUSED_EMPTY + 1];
} alu_count;

typedef struct alu_ctx {
    lethe_guard_t *gd;
    const lethe_alu_endpoint *ep; /* NULL: local */
    lethe_alu_local local;
    alu_count n;                  /* the current set's */
} alu_ctx;

static lethe_status alu_answer(void *ctx, const char *question, int max_new, int32_t eot,
                               char **text, int *flagged, int *refused)
{
    (void)eot;
    alu_ctx *a = ctx;
    lethe_alu_endpoint ep = a->ep ? *a->ep : (lethe_alu_endpoint){0};
    ep.max_tokens = a->local.max_tokens = max_new;
    lethe_alu_result r = {0};
    *text = NULL;
    lethe_status st = a->ep ? lethe_alu_answer(NULL, a->gd, lethe_alu_http_chat, &ep, question, &r)
                            : lethe_alu_answer(NULL, a->gd, lethe_alu_local_chat, &a->local,
                                               question, &r);
    if (st == LETHE_OK && !(*text = strdup(r.text)))
        st = lethe_fail(LETHE_ERR_NOMEM, "out of memory");
    *flagged = r.targets > 0, *refused = r.refused;
    if (st == LETHE_OK) {
        a->n.queries++, a->n.calls += r.calls, a->n.stages[r.stage]++;
        a->n.prompt_tokens += r.prompt_tokens, a->n.completion_tokens += r.completion_tokens;
    }
    lethe_alu_result_free(&r);
    return st;
}

/* A set's ALU counts as JSON. */
static cJSON *alu_json(const alu_count *n)
{
    cJSON *o = cJSON_CreateObject(), *st = cJSON_AddObjectToObject(o, "stages");
    cJSON_AddNumberToObject(o, "queries", (double)n->queries);
    cJSON_AddNumberToObject(o, "calls", (double)n->calls);
    cJSON_AddNumberToObject(o, "prompt_tokens", (double)n->prompt_tokens);
    cJSON_AddNumberToObject(o, "completion_tokens", (double)n->completion_tokens);
    for (int s = 0; s <= LETHE_ALU_REFUSED_EMPTY; s++)
        if (n->stages[s])
            cJSON_AddNumberToObject(st, lethe_alu_stage_name(s), (double)n->stages[s]);
    return o;
}

/* Evaluate set s on model m (`who`: "model" or "oracle") with the logits
 * processor proc and the answerer ans (either may be NULL). */
static lethe_status eval_one(const lethe_tofu_run_cfg *c, int s, const lethe_gpt_dir *m,
                             const char *who, const lethe_gpt_logits_proc *proc,
                             const lethe_tofu_answerer *ans, int no_generate,
                             lethe_tofu_set *out)
{
    char file[512], path[4096];
    snprintf(file, sizeof file, sets[s].file, c->split);
    snprintf(path, sizeof path, "%s/%s", c->data, file);
    lethe_tofu t = {0};
    lethe_status st = lethe_tofu_load(path, &t);
    if (st)
        return st;
    lethe_qa *items = as_items(&t);
    lethe_tofu_opts to = c->t;
    to.no_generate = no_generate;
    to.logits = proc;
    to.answerer = ans;
    char label[96];
    snprintf(label, sizeof label, "tofu: %s, %s set", who, sets[s].name);
    lethe_progress prog;
    lethe_progress_init(&prog, c->progress, label, "questions", t.n, !c->progress);
    to.progress = &prog;
    st = items ? lethe_tofu_eval_set(m->model, m->tok, (int32_t)m->eot, items, t.n,
                                     sets[s].kind, &to, out)
               : lethe_fail(LETHE_ERR_NOMEM, "out of memory");
    if (st && st != LETHE_ERR_NOMEM)
        st = lethe_fail(st, "%s: %s", path, lethe_error_detail());
    if (!st && prog.last != prog.t0) /* a final line after shown progress */
        lethe_progress_finish(&prog);
    free(items);
    lethe_tofu_free(&t);
    return st;
}

static lethe_status load_model(const char *dir, lethe_gpt_dir *d)
{
    lethe_status st = lethe_gpt_dir_load(dir, 1, d);
    if (st)
        return st;
    if (!d->tok || d->eot < 0) {
        lethe_gpt_dir_free(d);
        return lethe_fail(LETHE_ERR_FORMAT, "%s: TOFU's metrics need the run's tokenizer with an "
                          "<|endoftext|> token", dir);
    }
    return LETHE_OK;
}

static void add_num(cJSON *o, const char *key, double v)
{
    if (isfinite(v))
        cJSON_AddNumberToObject(o, key, v);
    else
        cJSON_AddNullToObject(o, key);
}

static cJSON *per_sample(const lethe_tofu_set *r, int guarded)
{
    cJSON *a = cJSON_CreateArray();
    for (size_t i = 0; a && i < r->n; i++) {
        const lethe_tofu_sample *s = &r->samples[i];
        cJSON *e = cJSON_CreateObject();
        cJSON_AddNumberToObject(e, "index", (double)i);
        add_num(e, "prob", s->prob);
        add_num(e, "rougeL_recall", s->rouge_l);
        add_num(e, "truth_ratio", s->truth_ratio);
        add_num(e, "exact_memorization", s->em);
        add_num(e, "extraction_strength", s->es);
        if (s->generated)
            cJSON_AddStringToObject(e, "generated", s->generated);
        if (guarded && s->generated) {
            cJSON_AddBoolToObject(e, "flagged", s->flagged);
            cJSON_AddBoolToObject(e, "refused", s->refused);
        }
        cJSON_AddItemToArray(a, e);
    }
    return a;
}

/* The summary: the settings, then each set's five means, Forget Quality and
 * Model Utility. NULL when out of memory. */
static cJSON *make_summary(const lethe_tofu_run_cfg *c, const lethe_tofu_set *res, double fq,
                           double mu)
{
    cJSON *sum = cJSON_CreateObject();
    cJSON_AddStringToObject(sum, "split", c->split);
    cJSON_AddStringToObject(sum, "truth_ratio_mean", c->t.arithmetic ? "arithmetic" : "geometric");
    if (c->t.memo == LETHE_TOFU_MEMO_OU)
        cJSON_AddStringToObject(sum, "memorization", "openunlearning");
    if (c->guard) {
        cJSON_AddStringToObject(sum, "guard", c->guard);
        cJSON_AddStringToObject(sum, "guard_mode", c->guard_mode ? c->guard_mode : "guard");
        if (c->guard_mode && !strcmp(c->guard_mode, "eco")) {
            cJSON_AddStringToObject(sum, "eco_fn", lethe_eco_fn_name(c->guard_eco.fn));
            cJSON_AddNumberToObject(sum, "eco_k", c->guard_eco.k);
            cJSON_AddNumberToObject(sum, "eco_sigma", c->guard_eco.sigma);
        }
    }
    if (c->t.paraphrased)
        cJSON_AddBoolToObject(sum, "paraphrased_questions", 1);
    for (const cJSON *e = c->note ? c->note->child : NULL; e; e = e->next)
        cJSON_AddItemToObject(sum, e->string, cJSON_Duplicate(e, 1));
    for (int s = 0; s < N_SETS; s++) {
        static const char *const what[5] = {"prob", "rougeL_recall", "truth_ratio",
                                            "exact_memorization", "extraction_strength"};
        const lethe_tofu_set *r = &res[s];
        const double v[5] = {r->prob, r->rouge_l, r->truth_ratio, r->em, r->es};
        for (int k = 0; k < 5; k++) {
            char key[64];
            snprintf(key, sizeof key, "%s_%s", sets[s].name, what[k]);
            add_num(sum, key, v[k]);
        }
        for (int k = 0; k < 2 && c->guard; k++) {
            char key[64];
            snprintf(key, sizeof key, "%s_%s", sets[s].name, k ? "refused" : "flagged");
            add_num(sum, key, k ? r->refused : r->flagged);
        }
    }
    add_num(sum, "forget_quality", fq);
    add_num(sum, "model_utility", mu);
    return sum;
}

/* ---- membership inference on the forget split against its holdout ------- */

/* One side: a file's question-answer pairs as sequences, and their scores. */
typedef struct mia_side {
    lethe_tofu t;
    int32_t **ids;
    char **text; /* " " answer, what the zlib attack compresses */
    lethe_lm_mia_seq *seqs;
    lethe_lm_mia_score *sc;
} mia_side;

static void mia_side_free(mia_side *s)
{
    for (size_t i = 0; i < s->t.n; i++) {
        free(s->ids ? s->ids[i] : NULL);
        free(s->text ? s->text[i] : NULL);
    }
    free(s->ids);
    free(s->text);
    free(s->seqs);
    free(s->sc);
    lethe_tofu_free(&s->t);
}

/* Load and encode path's pairs; score them on m (and ref when not NULL). */
static lethe_status mia_side_score(const lethe_tofu_run_cfg *c, const char *path,
                                   lethe_gpt_dir *m, const lethe_gpt_dir *ref, mia_side *s)
{
    lethe_status st = lethe_tofu_load(path, &s->t);
    size_t n = s->t.n ? s->t.n : 1;
    if (!st && (!(s->ids = calloc(n, sizeof *s->ids)) || !(s->text = calloc(n, sizeof *s->text)) ||
                !(s->seqs = calloc(n, sizeof *s->seqs)) || !(s->sc = calloc(n, sizeof *s->sc))))
        st = lethe_fail(LETHE_ERR_NOMEM, "out of memory");
    for (size_t i = 0; !st && i < s->t.n; i++) {
        const lethe_tofu_row *r = &s->t.rows[i];
        int np = 0, len = 0;
        size_t al = strlen(r->answer);
        if ((st = lethe_qa_encode(m->tok, r->question, r->answer, (int32_t)m->eot, &s->ids[i],
                                  &np, &len)))
            break;
        if (!(s->text[i] = malloc(al + 2))) {
            st = lethe_fail(LETHE_ERR_NOMEM, "out of memory");
            break;
        }
        s->text[i][0] = ' ';
        memcpy(s->text[i] + 1, r->answer, al + 1);
        s->seqs[i] = (lethe_lm_mia_seq){s->ids[i], len, np, s->text[i]};
    }
    if (!st)
        st = lethe_lm_mia_seq_scores(m->model, ref ? ref->model : NULL, s->seqs, s->t.n,
                                     c->mia_k, c->t.batch, s->sc);
    if (!st)
        st = lethe_lm_mia_seq_gradnorm(m->model, s->seqs, s->t.n, s->sc);
    if (st && st != LETHE_ERR_NOMEM)
        st = lethe_fail(st, "%s: %s", path, lethe_error_detail());
    return st;
}

/* Whether the attacks run (asked for, or a reference model given), and on
 * which holdout set (*holdout: its name). */
static lethe_status mia_wanted(const lethe_tofu_run_cfg *c, char *holdout, size_t cap, int *on)
{
    *on = 0;
    if (!c->mia && !c->mia_ref)
        return LETHE_OK;
    if (strncmp(c->split, "forget", 6))
        return lethe_fail(LETHE_ERR_INVALID, "the split %s has no holdout set (holdoutXX "
                          "belongs to forgetXX) for the membership-inference attacks",
                          c->split);
    snprintf(holdout, cap, "holdout%s", c->split + 6);
    if (c->logits)
        return lethe_fail(LETHE_ERR_INVALID, "the membership-inference attacks do not take a "
                          "logits processor");
    if (!(c->mia_k > 0 && c->mia_k <= 1))
        return lethe_fail(LETHE_ERR_INVALID, "the Min-K%% fraction must be in (0, 1], got %g",
                          c->mia_k);
    *on = 1;
    return LETHE_OK;
}

/* The attacks of m on the forget split against the holdout set, into the
 * files' objects. */
static lethe_status mia_run(const lethe_tofu_run_cfg *c, const char *holdout, lethe_gpt_dir *m,
                            cJSON *eval, cJSON *sum)
{
    lethe_gpt_dir r = {0};
    mia_side sides[2] = {{{0}}};
    char path[4096];
    lethe_status st = LETHE_OK;
    if (c->mia_ref && !(st = load_model(c->mia_ref, &r)))
        st = lethe_lm_mia_ref_check(m, c->run, &r, c->mia_ref);
    for (int s = 0; s < 2 && !st; s++) {
        if (s == 0)
            snprintf(path, sizeof path, "%s/" "%s_perturbed.json", c->data, c->split);
        else
            snprintf(path, sizeof path, "%s/%s.json", c->data, holdout);
        st = mia_side_score(c, path, m, c->mia_ref ? &r : NULL, &sides[s]);
    }
    if (!st) {
        cJSON_AddStringToObject(sum, "mia_holdout", holdout);
        if (c->mia_ref)
            cJSON_AddStringToObject(sum, "mia_ref", c->mia_ref);
        else
            cJSON_AddNullToObject(sum, "mia_ref");
        cJSON_AddNumberToObject(sum, "mia_k", c->mia_k);
    }
    for (int k = 0; !st && k < LETHE_MIA_N_ATTACKS; k++)
        if (k != LETHE_MIA_REFERENCE || c->mia_ref)
            st = lethe_lm_mia_report(sides[0].sc, sides[0].t.n, sides[1].sc, sides[1].t.n, k,
                                     eval, sum);
    for (int s = 0; s < 2; s++)
        mia_side_free(&sides[s]);
    lethe_gpt_dir_free(&r);
    return st;
}

lethe_status lethe_tofu_run(const lethe_tofu_run_cfg *c, cJSON **summary)
{
    if (summary)
        *summary = NULL;
    if (!c->run || !c->data || !c->split || strchr(c->split, '/'))
        return lethe_fail(LETHE_ERR_INVALID, "a TOFU evaluation needs a run, a benchmark and "
                          "a split name");
    lethe_gpt_dir m = {0}, orc = {0};
    lethe_tofu_set res[N_SETS] = {{0}}, oracle_forget = {0};
    cJSON *eval = NULL, *sum = NULL;
    lethe_status st = load_model(c->run, &m);
    if (!st && c->oracle)
        st = load_model(c->oracle, &orc);
    if (!st && c->logits && c->logits->check && (st = c->logits->check(c->logits->ctx, m.model)))
        st = lethe_fail(st, "%s: %s", c->run, lethe_error_detail());
    lethe_guard_t *gd = NULL;
    lethe_guard_serve_t *gs = NULL;
    int alu = c->guard && c->guard_mode && !strcmp(c->guard_mode, "alu");
    if (!st && c->guard && c->logits)
        st = lethe_fail(LETHE_ERR_INVALID, "a guard and a logits processor do not combine");
    else if (!st && alu)
        st = lethe_guard_load(c->guard, &gd);
    else if (!st && c->guard)
        st = lethe_guard_serve_open(c->guard, m.model, m.tok, c->guard_mode, &c->guard_eco, &gd,
                                    &gs);
    alu_ctx actx = {.gd = gd, .ep = c->alu_endpoint};
    lethe_alu_local_init(&actx.local, m.model, m.tok, (int32_t)m.eot);
    cJSON *alu_sum = alu ? cJSON_CreateObject() : NULL;
    if (!st && alu && !alu_sum)
        st = lethe_fail(LETHE_ERR_NOMEM, "out of memory");
    lethe_tofu_answerer answerer = {alu ? alu_answer : guard_answer,
                                    alu ? (void *)&actx : (void *)gs};
    int answered = gs || (alu && gd);
    /* the attacks first: their inputs fail before the long evaluation */
    char holdout[512];
    int mia = 0;
    cJSON *mia_eval = cJSON_CreateObject(), *mia_sum = cJSON_CreateObject();
    if (!st && (!mia_eval || !mia_sum))
        st = lethe_fail(LETHE_ERR_NOMEM, "out of memory");
    if (!st)
        st = mia_wanted(c, holdout, sizeof holdout, &mia);
    if (!st && mia)
        st = mia_run(c, holdout, &m, mia_eval, mia_sum);
    for (int s = 0; s < N_SETS && !st; s++) {
        memset(&actx.n, 0, sizeof actx.n);
        st = eval_one(c, s, &m, "model", c->logits, answered ? &answerer : NULL,
                      c->t.no_generate, &res[s]);
        if (!st && alu_sum && actx.n.queries)
            cJSON_AddItemToObject(alu_sum, sets[s].name, alu_json(&actx.n));
    }
    /* the oracle's truth ratios on the forget split (no generation needed) */
    if (!st && c->oracle)
        st = eval_one(c, 0, &orc, "oracle", NULL, NULL, 1, &oracle_forget);
    double fq = NAN, mu = NAN;
    if (!st && c->oracle)
        st = lethe_tofu_forget_quality(&res[0], &oracle_forget, &fq);
    if (!st && !c->t.no_generate) {
        const lethe_tofu_set *u[3] = {&res[1], &res[2], &res[3]};
        st = lethe_tofu_model_utility(u, 3, &mu);
    }
    const char *dir = c->out ? c->out : c->run;
    if (!st)
        st = lethe_run_mkdir(dir);
    if (!st) {
        eval = cJSON_CreateObject();
        sum = make_summary(c, res, fq, mu);
        for (int s = 0; eval && s < N_SETS; s++)
            cJSON_AddItemToObject(eval, sets[s].name, per_sample(&res[s], c->guard != NULL));
        if (!eval || !sum)
            st = lethe_fail(LETHE_ERR_NOMEM, "out of memory");
        /* the attacks' keys after the others */
        for (cJSON *e; !st && (e = mia_eval->child);)
            cJSON_AddItemToObject(eval, e->string, cJSON_DetachItemViaPointer(mia_eval, e));
        for (cJSON *e; !st && (e = mia_sum->child);)
            cJSON_AddItemToObject(sum, e->string, cJSON_DetachItemViaPointer(mia_sum, e));
        if (!st && alu_sum) {
            cJSON_AddStringToObject(alu_sum, "agent", c->alu_endpoint ? c->alu_endpoint->url
                                                                      : "local");
            cJSON_AddNumberToObject(alu_sum, "truncated_prompts", (double)actx.local.truncated);
            cJSON_AddItemToObject(sum, "alu", alu_sum);
            alu_sum = NULL;
        }
    }
    if (!st)
        st = lethe_json_write(dir, "TOFU_EVAL.json", eval);
    if (!st)
        st = lethe_json_write(dir, "TOFU_SUMMARY.json", sum);
    cJSON_Delete(eval);
    cJSON_Delete(mia_eval);
    cJSON_Delete(mia_sum);
    cJSON_Delete(alu_sum);
    if (!st && summary) {
        *summary = sum;
        sum = NULL;
    }
    cJSON_Delete(sum);
    for (int s = 0; s < N_SETS; s++)
        lethe_tofu_set_free(&res[s]);
    lethe_tofu_set_free(&oracle_forget);
    lethe_guard_serve_free(gs);
    lethe_guard_free(gd);
    lethe_gpt_dir_free(&m);
    lethe_gpt_dir_free(&orc);
    return st;
}
