/* MUSE's evaluation run (lethe/muse_eval.h, docs/muse.md): VerbMem, KnowMem
 * on the forget and retain questions, PrivLeak against an oracle, written as
 * MUSE_EVAL.json and MUSE_SUMMARY.json. */
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <cjson/cJSON.h>

#include "lethe/fileio.h"
#include "lethe/json.h"
#include "lethe/gpt_hf.h"
#include "lethe/guard_serve.h"
#include "lethe/lm_mia.h"
#include "lethe/muse.h"
#include "lethe/muse_eval.h"
#include "lethe/progress.h"
#include "lethe/run.h"
#include "lethe/stats.h"

void lethe_muse_eval_defaults(lethe_muse_eval_cfg *c)
{
    memset(c, 0, sizeof *c);
    c->verbmem_max_new = 128;
    c->knowmem_max_new = 32;
    c->mink = 0.4;
}

static lethe_status at(lethe_status st, const char *where)
{
    char msg[1024];
    snprintf(msg, sizeof msg, "%s", lethe_error_detail());
    return lethe_fail(st, "%s: %s", where, msg);
}

/* ------------------------------------------------------------ the pieces */

void lethe_muse_cut(char *text)
{
    static const char *const stops[] = {"\n\n", "\nQuestion", "Question:"};
    char *cut = NULL;
    for (int i = 0; i < 3; i++) {
        char *p = strstr(text, stops[i]);
        if (p && (!cut || p < cut))
            cut = p;
    }
    if (cut)
        *cut = '\0';
}

double lethe_muse_auc(double lethe_auc)
{
    return 1.0 - lethe_auc;
}

double lethe_muse_privleak(double auc_run, double auc_oracle)
{
    if (!isfinite(auc_run) || !isfinite(auc_oracle) || auc_oracle == 0)
        return NAN;
    return (auc_run - auc_oracle) / auc_oracle * 100.0;
}

static lethe_status encode(const lethe_tokenizer_t *tok, const char *text, uint32_t **ids,
                           size_t *n)
{
    return lethe_tokenizer_encode(tok, text, strlen(text), ids, n);
}

/* eot (when >= 0) then the last room - head of t[0..n) as *ids. */
static lethe_status keep_last(int32_t eot, const uint32_t *t, size_t n, int room, int32_t **ids,
                              int *len)
{
    int head = eot >= 0, keep = room - head;
    if (keep < 1)
        return lethe_fail(LETHE_ERR_INVALID, "no room for a prompt");
    if (n < (size_t)keep)
        keep = (int)n;
    int32_t *out = malloc(sizeof *out * (size_t)(keep + head));
    if (!out)
        return lethe_fail(LETHE_ERR_NOMEM, "out of memory");
    if (head)
        out[0] = eot;
    for (int i = 0; i < keep; i++)
        out[head + i] = (int32_t)t[n - (size_t)keep + (size_t)i];
    *ids = out, *len = keep + head;
    return LETHE_OK;
}

lethe_status lethe_muse_verbmem_prompt(const lethe_tokenizer_t *tok, int32_t eot,
                                       const char *prompt, int room, int32_t **ids, int *n)
{
    *ids = NULL, *n = 0;
    uint32_t *t = NULL;
    size_t m = 0;
    lethe_status st = encode(tok, prompt, &t, &m);
    if (!st && m == 0)
        st = lethe_fail(LETHE_ERR_INVALID, "an empty prompt");
    if (!st)
        st = keep_last(eot, t, m, room, ids, n);
    free(t);
    return st;
}

lethe_status lethe_muse_knowmem_prompt(const lethe_tokenizer_t *tok, int32_t eot,
                                       const char *const *icl_q, const char *const *icl_a,
                                       int n_icl, const char *q, int room, int32_t **ids,
                                       int *n, int *n_kept)
{
    *ids = NULL, *n = 0, *n_kept = 0;
    size_t bytes = strlen(q) + 32;
    for (int i = 0; i < n_icl; i++)
        bytes += strlen(icl_q[i]) + strlen(icl_a[i]) + 32;
    char *text = malloc(bytes);
    if (!text)
        return lethe_fail(LETHE_ERR_NOMEM, "out of memory");
    int head = eot >= 0;
    lethe_status st = LETHE_OK;
    uint32_t *t = NULL;
    size_t m = 0;
    for (int first = 0; first <= n_icl && !st; first++) {
        size_t len = 0;
        for (int i = first; i < n_icl; i++)
            len += (size_t)sprintf(text + len, "Question: %s\nAnswer: %s\n\n", icl_q[i], icl_a[i]);
        sprintf(text + len, "Question: %s\nAnswer: ", q);
        free(t);
        t = NULL;
        if ((st = encode(tok, text, &t, &m)))
            break;
        if (m + (size_t)head <= (size_t)room || first == n_icl) {
            *n_kept = n_icl - first;
            st = keep_last(eot, t, m, room, ids, n);
            break;
        }
    }
    free(t);
    free(text);
    return st;
}

/* ------------------------------------------------------------------ data */

enum { F_VERBMEM, F_KF, F_KF_ICL, F_KR, F_KR_ICL, F_PF, F_PH, F_PR, N_FILES };
static const char *const files[N_FILES] = {
    "verbmem/forget.json",      "knowmem/forget_qa.json", "knowmem/forget_qa_icl.json",
    "knowmem/retain_qa.json",   "knowmem/retain_qa_icl.json", "privleak/forget.json",
    "privleak/holdout.json",    "privleak/retain.json"};

/* One file: a JSON array of strings (privleak) or of objects with string
 * fields k1 and k2. */
typedef struct set {
    char path[4096];
    cJSON *doc;
    int n;
    const char **a, **b; /* k1 (or the string), k2 */
    char *buf;           /* the texts a and b point into, when not doc's */
} set;

static lethe_status set_load(set *s, const char *dir, int f)
{
    static const char *const keys[N_FILES][2] = {
        {"prompt", "gt"}, {"question", "answer"}, {"question", "answer"},
        {"question", "answer"}, {"question", "answer"}, {NULL, NULL}, {NULL, NULL},
        {NULL, NULL}};
    snprintf(s->path, sizeof s->path, "%s/%s", dir, files[f]);
    unsigned char *raw = NULL;
    size_t len = 0;
    lethe_status st = lethe_file_read(s->path, &raw, &len);
    if (st)
        return st;
    s->doc = cJSON_ParseWithLength((const char *)raw, len);
    free(raw);
    if (!cJSON_IsArray(s->doc) || cJSON_GetArraySize(s->doc) < 1)
        return lethe_fail(LETHE_ERR_FORMAT, "%s: not a non-empty JSON array (MUSE's layout)",
                          s->path);
    s->n = cJSON_GetArraySize(s->doc);
    s->a = calloc((size_t)s->n, sizeof *s->a);
    s->b = calloc((size_t)s->n, sizeof *s->b);
    if (!s->a || !s->b)
        return lethe_fail(LETHE_ERR_NOMEM, "out of memory");
    int i = 0;
    for (const cJSON *e = s->doc->child; e; e = e->next, i++) {
        if (!keys[f][0]) {
            s->a[i] = cJSON_GetStringValue(e);
        } else {
            s->a[i] = cJSON_GetStringValue(cJSON_GetObjectItemCaseSensitive(e, keys[f][0]));
            s->b[i] = cJSON_GetStringValue(cJSON_GetObjectItemCaseSensitive(e, keys[f][1]));
        }
        if (!s->a[i] || (keys[f][0] && !s->b[i]))
            return keys[f][0] ? lethe_fail(LETHE_ERR_FORMAT, "%s: item %d is not an object with "
                                           "strings \"%s\" and \"%s\"", s->path, i, keys[f][0],
                                           keys[f][1])
                              : lethe_fail(LETHE_ERR_FORMAT, "%s: item %d is not a string",
                                           s->path, i);
    }
    return LETHE_OK;
}

static void set_free(set *s)
{
    cJSON_Delete(s->doc);
    free(s->a);
    free(s->b);
    free(s->buf);
}

static int space(char ch)
{
    return ch == ' ' || ch == '\t' || ch == '\n' || ch == '\v' || ch == '\f' || ch == '\r';
}

/* VerbMem pairs from passages, as lethe_muse_write cuts verbmem's: the
 * first LETHE_MUSE_PROMPT_WORDS words the prompt, the rest the gt, the
 * whitespace between them left out; a passage without a word after the
 * prompt gives none. */
static lethe_status split_passages(const set *p, set *out)
{
    size_t total = 0;
    for (int i = 0; i < p->n; i++)
        total += strlen(p->a[i]) + 1;
    snprintf(out->path, sizeof out->path, "%s", p->path);
    out->a = calloc((size_t)p->n, sizeof *out->a);
    out->b = calloc((size_t)p->n, sizeof *out->b);
    out->buf = malloc(total);
    if (!out->a || !out->b || !out->buf)
        return lethe_fail(LETHE_ERR_NOMEM, "out of memory");
    char *w = out->buf;
    for (int i = 0; i < p->n; i++) {
        char *t = strcpy(w, p->a[i]), *q = t;
        w += strlen(t) + 1;
        for (int k = 0; k < LETHE_MUSE_PROMPT_WORDS && *q; k++) {
            while (space(*q))
                q++;
            while (*q && !space(*q))
                q++;
        }
        char *gt = q;
        while (space(*gt))
            gt++;
        if (!*gt || q == t)
            continue;
        *q = '\0';
        out->a[out->n] = t, out->b[out->n++] = gt;
    }
    return LETHE_OK;
}

/* ---------------------------------------------------------------- models */

static lethe_status load_model(const char *dir, lethe_gpt_dir *d)
{
    lethe_status st = lethe_gpt_dir_load(dir, 1, d);
    if (!st && !d->tok)
        st = lethe_fail(LETHE_ERR_FORMAT, "%s: MUSE's criteria need the run's tokenizer", dir);
    return st;
}

/* The oracle must read texts as the run does. */
static lethe_status same_tokenizer(const char *run, const lethe_gpt_dir *m, const char *oracle,
                                   const lethe_gpt_dir *r)
{
    if (r->model->cfg.vocab_size != m->model->cfg.vocab_size)
        return lethe_fail(LETHE_ERR_FORMAT, "%s: the oracle's vocabulary (%d tokens) is not the "
                          "run's (%d)", oracle, r->model->cfg.vocab_size,
                          m->model->cfg.vocab_size);
    char *a = NULL, *b = NULL;
    lethe_status st = LETHE_OK;
    if (lethe_tokenizer_to_json(m->tok, &a) || lethe_tokenizer_to_json(r->tok, &b))
        st = lethe_fail(LETHE_ERR_NOMEM, "out of memory");
    else if (strcmp(a, b) || m->eot != r->eot)
        st = lethe_fail(LETHE_ERR_FORMAT, "%s: the oracle's tokenizer is not the one of %s",
                        oracle, run);
    free(a);
    free(b);
    return st;
}

/* ------------------------------------------------------------ generation */

/* One generation: its prompt, reference and result. */
typedef struct item {
    int32_t *ids;
    int n, n_icl;
    int flagged, refused; /* the guard's verdicts */
    char *ref;  /* the reference (owned) */
    char *out;  /* the generation, cut (owned) */
    double rouge;
} item;

static lethe_status decode(const lethe_tokenizer_t *tok, const int32_t *t, int n, int32_t eot,
                           char **text)
{
    uint32_t *u = malloc(sizeof *u * (size_t)(n ? n : 1));
    if (!u)
        return lethe_fail(LETHE_ERR_NOMEM, "out of memory");
    int m = 0;
    for (int i = 0; i < n; i++)
        if (t[i] != eot) /* skip_special_tokens */
            u[m++] = (uint32_t)t[i];
    unsigned char *bytes = NULL;
    size_t len = 0;
    lethe_status st = lethe_tokenizer_decode(tok, u, (size_t)m, &bytes, &len);
    free(u);
    if (!st)
        *text = (char *)bytes;
    return st;
}

/* The guarded answer to it: the detector reads the prompt's text (its
 * tokens decoded, the end-of-text token left out), decoding starts from
 * its tokens. */
static lethe_status guard_one(const lethe_gpt_dir *m, const lethe_guard_serve_t *gs, item *it,
                              int max_new)
{
    char *text = NULL;
    lethe_status st = decode(m->tok, it->ids, it->n, (int32_t)m->eot, &text);
    lethe_guard_serve_result r;
    if (st)
        return st;
    st = lethe_guard_serve_generate_ids(gs, text, strlen(text), it->ids, (size_t)it->n, max_new,
                                        (int32_t)m->eot, &r);
    free(text);
    if (!st && !(it->out = strdup(r.out.text)))
        st = lethe_fail(LETHE_ERR_NOMEM, "out of memory");
    it->flagged = r.flagged, it->refused = r.out.refused;
    lethe_guard_serve_result_free(&r);
    return st;
}

/* The plain (or logits-edited) greedy answer to it into it->out. */
static lethe_status plain_one(const lethe_gpt_dir *m, const lethe_gpt_logits_proc *proc,
                              item *it, int max_new, int knowmem)
{
    static const char *const stops[] = {"\n\n", "\nQuestion", "Question:"};
    lethe_gen_opts o;
    lethe_gen_defaults(&o);
    o.max_new = max_new;
    o.eos = (int32_t)m->eot;
    o.tok = m->tok;
    if (knowmem)
        o.stop = stops, o.n_stop = 3;
    if (proc)
        o.logits_hook = proc->step, o.logits_ctx = proc->ctx;
    lethe_gen_result r;
    lethe_status st = lethe_gpt_generate(m->model, it->ids, it->n, &o, &r);
    if (!st && proc && proc->status && (st = proc->status(proc->ctx)) != LETHE_OK)
        lethe_gen_result_free(&r);
    if (st)
        return st;
    st = decode(m->tok, r.tokens, r.n, (int32_t)m->eot, &it->out);
    lethe_gen_result_free(&r);
    return st;
}

/* Answer it (through the guard session gs when not NULL) and score it. */
static lethe_status gen_one(const lethe_gpt_dir *m, const lethe_gpt_logits_proc *proc,
                            const lethe_guard_serve_t *gs, item *it, int max_new, int knowmem)
{
    lethe_status st = gs ? guard_one(m, gs, it, max_new) : plain_one(m, proc, it, max_new, knowmem);
    if (st)
        return st;
    if (knowmem)
        lethe_muse_cut(it->out);
    lethe_rouge_score rs;
    if ((st = lethe_rouge_l(it->ref, it->out, 0, &rs)))
        return st;
    it->rouge = 100.0 * rs.f1;
    return LETHE_OK;
}

/* Generate every item (threads share the model; one at a time with a
 * logits processor, whose context serves one call at a time); *mean gets
 * the mean ROUGE-L. */
static lethe_status gen_all(const lethe_muse_eval_cfg *c, const lethe_gpt_dir *m,
                            const lethe_guard_serve_t *gs, item *items, int n, int max_new,
                            int knowmem, const char *label, double *mean)
{
    lethe_progress prog;
    lethe_progress_init(&prog, c->progress, label, "items", (uint64_t)n, !c->progress);
    lethe_status first = LETHE_OK;
    int first_i = -1;
    char detail[1024] = "";
    long done = 0;
#pragma omp parallel for schedule(dynamic, 1) if (!c->logits)
    for (int i = 0; i < n; i++) {
        lethe_status st = gen_one(m, c->logits, gs, &items[i], max_new, knowmem);
#pragma omp critical
        {
            if (st && (first_i < 0 || i < first_i)) {
                first = st, first_i = i;
                snprintf(detail, sizeof detail, "%s", lethe_error_detail());
            }
            lethe_progress_update(&prog, (uint64_t)++done);
        }
    }
    if (first)
        return lethe_fail(first, "item %d: %s", first_i, detail);
    if (prog.last != prog.t0)
        lethe_progress_finish(&prog);
    double s = 0;
    for (int i = 0; i < n; i++)
        s += items[i].rouge;
    *mean = s / n;
    return LETHE_OK;
}

static void items_free(item *it, int n)
{
    for (int i = 0; it && i < n; i++) {
        free(it[i].ids);
        free(it[i].ref);
        free(it[i].out);
    }
    free(it);
}

static char *dup(const char *s)
{
    size_t n = strlen(s) + 1;
    char *d = malloc(n);
    return d ? memcpy(d, s, n) : NULL;
}

/* VerbMem's items: the prompt's last tokens, gt cut to max_new tokens. */
static lethe_status verbmem_items(const lethe_gpt_dir *m, const set *v, int max_new, item *it)
{
    int room = m->model->cfg.n_positions - max_new;
    lethe_status st = LETHE_OK;
    for (int i = 0; i < v->n && !st; i++) {
        st = lethe_muse_verbmem_prompt(m->tok, (int32_t)m->eot, v->a[i], room, &it[i].ids,
                                       &it[i].n);
        uint32_t *t = NULL;
        size_t k = 0;
        if (!st)
            st = encode(m->tok, v->b[i], &t, &k);
        if (!st && k > (size_t)max_new)
            k = (size_t)max_new;
        unsigned char *bytes = NULL;
        size_t len = 0;
        if (!st && !(st = lethe_tokenizer_decode(m->tok, t, k, &bytes, &len)))
            it[i].ref = (char *)bytes;
        free(t);
        if (st && st != LETHE_ERR_NOMEM) {
            char w[4200];
            snprintf(w, sizeof w, "%s: item %d", v->path, i);
            st = at(st, w);
        }
    }
    return st;
}

static lethe_status knowmem_items(const lethe_gpt_dir *m, const set *qa, const set *icl,
                                  int max_new, item *it)
{
    int room = m->model->cfg.n_positions - max_new;
    lethe_status st = LETHE_OK;
    for (int i = 0; i < qa->n && !st; i++) {
        st = lethe_muse_knowmem_prompt(m->tok, (int32_t)m->eot, icl->a, icl->b, icl->n,
                                       qa->a[i], room, &it[i].ids, &it[i].n, &it[i].n_icl);
        if (!st && !(it[i].ref = dup(qa->b[i])))
            st = lethe_fail(LETHE_ERR_NOMEM, "out of memory");
        if (st && st != LETHE_ERR_NOMEM) {
            char w[4200];
            snprintf(w, sizeof w, "%s: item %d", qa->path, i);
            st = at(st, w);
        }
    }
    return st;
}

/* -------------------------------------------------------------- PrivLeak */

/* The Min-K% scores of one privleak side. */
typedef struct side {
    const set *s;
    char **texts;
    int n_cut;
    lethe_lm_mia_score *sc;
} side;

static lethe_status side_fit(side *d, const set *s, const lethe_gpt_dir *m, int P)
{
    d->s = s;
    d->texts = calloc((size_t)s->n, sizeof *d->texts);
    if (!d->texts)
        return lethe_fail(LETHE_ERR_NOMEM, "out of memory");
    lethe_status st = LETHE_OK;
    for (int i = 0; i < s->n && !st; i++) {
        int cut = 0;
        st = lethe_lm_mia_fit(m->tok, (int32_t)m->eot, P, s->a[i], &d->texts[i], &cut);
        d->n_cut += cut;
    }
    return st;
}

/* The scores of every text (with ref: the reference attack's too; with
 * grad: the gradient norm, one backward a text, on m's own buffers). */
static lethe_status side_scores(side *d, const lethe_gpt_dir *m, const lethe_gpt *ref,
                                int grad, double k)
{
    free(d->sc);
    d->sc = calloc((size_t)d->s->n, sizeof *d->sc);
    if (!d->sc)
        return lethe_fail(LETHE_ERR_NOMEM, "out of memory");
    const char *const *t = (const char *const *)d->texts;
    lethe_status st = lethe_lm_mia_scores(m->model, ref, m->tok, (int32_t)m->eot, t,
                                          (size_t)d->s->n, k, 8, d->sc);
    if (!st && grad)
        st = lethe_lm_mia_gradnorm(m->model, m->tok, (int32_t)m->eot, t, (size_t)d->s->n,
                                   d->sc);
    return st && st != LETHE_ERR_NOMEM ? at(st, d->s->path) : st;
}

static void side_free(side *d)
{
    for (int i = 0; d->texts && i < d->s->n; i++)
        free(d->texts[i]);
    free(d->texts);
    free(d->sc);
}

/* lethe_lm_mia_roc's AUC of the Min-K% scores of forget against holdout. */
static lethe_status mink_auc(const side *f, const side *h, double *auc)
{
    double *a = malloc(sizeof *a * (size_t)(f->s->n + h->s->n));
    if (!a)
        return lethe_fail(LETHE_ERR_NOMEM, "out of memory");
    for (int i = 0; i < f->s->n; i++)
        a[i] = f->sc[i].score[LETHE_MIA_MIN_K];
    for (int i = 0; i < h->s->n; i++)
        a[f->s->n + i] = h->sc[i].score[LETHE_MIA_MIN_K];
    lethe_roc_result r;
    lethe_status st = lethe_lm_mia_roc(a, (size_t)f->s->n, a + f->s->n, (size_t)h->s->n, &r);
    free(a);
    if (st)
        return at(st, "PrivLeak's Min-K% AUC");
    *auc = r.auc;
    return LETHE_OK;
}

/* ----------------------------------------------------------------- files */

static void add_num(cJSON *o, const char *key, double v)
{
    if (isfinite(v))
        cJSON_AddNumberToObject(o, key, v);
    else
        cJSON_AddNullToObject(o, key);
}

static cJSON *gen_eval(const item *it, int n, double mean, const set *inputs, int knowmem,
                       int guarded)
{
    cJSON *o = cJSON_CreateObject(), *by = cJSON_CreateObject();
    add_num(o, "agg_value", mean);
    cJSON_AddItemToObject(o, "value_by_index", by);
    char key[32];
    for (int i = 0; by && i < n; i++) {
        cJSON *e = cJSON_CreateObject();
        add_num(e, "rougeL_f1", it[i].rouge);
        cJSON_AddStringToObject(e, "input", inputs->a[i]);
        cJSON_AddStringToObject(e, "ground_truth", it[i].ref);
        cJSON_AddStringToObject(e, "generation", it[i].out);
        cJSON_AddNumberToObject(e, "prompt_tokens", it[i].n);
        if (knowmem)
            cJSON_AddNumberToObject(e, "icl_examples", it[i].n_icl);
        if (guarded) {
            cJSON_AddBoolToObject(e, "flagged", it[i].flagged);
            cJSON_AddBoolToObject(e, "refused", it[i].refused);
        }
        snprintf(key, sizeof key, "%d", i);
        cJSON_AddItemToObject(by, key, e);
    }
    return o;
}

/* {"agg_value": mean, "value_by_index": {"I": {"score": S}}}: Min-K% (w 0),
 * exact memorisation (1) or extraction strength (2). */
static cJSON *per_text(const side *d, int w)
{
    cJSON *o = cJSON_CreateObject(), *by = cJSON_CreateObject();
    double sum = 0;
    char key[32];
    for (int i = 0; o && by && i < d->s->n; i++) {
        const lethe_lm_mia_score *s = &d->sc[i];
        double v = w == 0 ? s->score[LETHE_MIA_MIN_K] : w == 1 ? s->em : s->es;
        cJSON *e = cJSON_CreateObject();
        add_num(e, "score", v);
        snprintf(key, sizeof key, "%d", i);
        cJSON_AddItemToObject(by, key, e);
        sum += v;
    }
    add_num(o, "agg_value", sum / d->s->n);
    cJSON_AddItemToObject(o, "value_by_index", by);
    return o;
}

/* ------------------------------------------------------------------- run */

lethe_status lethe_muse_eval_run(const lethe_muse_eval_cfg *c, cJSON **summary)
{
    if (summary)
        *summary = NULL;
    if (!c->run || !c->data)
        return lethe_fail(LETHE_ERR_INVALID, "a MUSE evaluation needs a run and a data "
                          "directory");
    if (c->verbmem_max_new < 1 || c->knowmem_max_new < 1 || !(c->mink > 0 && c->mink <= 1))
        return lethe_fail(LETHE_ERR_INVALID, "MUSE's settings out of range (max_new >= 1, "
                          "0 < k <= 1)");
    set sets[N_FILES], rv = {0}; /* rv: verbmem pairs of the retain passages */
    memset(sets, 0, sizeof sets);
    lethe_gpt_dir m = {0}, o = {0}, r = {0};
    item *gi[4] = {NULL, NULL, NULL, NULL};
    side run_s[2] = {{0}}, orc_s[2] = {{0}};
    cJSON *eval = NULL, *sum = NULL;
    double rouge[4] = {NAN, NAN, NAN, NAN};
    double auc = NAN, auc_o = NAN;
    lethe_status st = LETHE_OK;
    for (int f = 0; f < N_FILES && !st; f++)
        st = set_load(&sets[f], c->data, f);
    if (!st)
        st = split_passages(&sets[F_PR], &rv);
    if (!st)
        st = load_model(c->run, &m);
    if (!st && c->oracle && !(st = load_model(c->oracle, &o)))
        st = same_tokenizer(c->run, &m, c->oracle, &o);
    if (!st && c->mia_ref && !(st = load_model(c->mia_ref, &r)))
        st = lethe_lm_mia_ref_check(&m, c->run, &r, c->mia_ref);
    int P = m.model ? m.model->cfg.n_positions : 0;
    if (!st && (c->verbmem_max_new >= P || c->knowmem_max_new >= P))
        st = lethe_fail(LETHE_ERR_INVALID, "%s: a context of %d tokens leaves no room for "
                        "prompts of MUSE's generation lengths (%d, %d)", c->run, P,
                        c->verbmem_max_new, c->knowmem_max_new);
    if (!st && c->logits && c->logits->check && (st = c->logits->check(c->logits->ctx, m.model)))
        st = at(st, c->run);
    lethe_guard_t *gd = NULL;
    lethe_guard_serve_t *gs = NULL;
    if (!st && c->guard && c->logits)
        st = lethe_fail(LETHE_ERR_INVALID, "a guard and a logits processor do not combine");
    if (!st && c->guard)
        st = lethe_guard_serve_open(c->guard, m.model, m.tok, c->guard_mode, &c->guard_eco, &gd,
                                    &gs);
    /* the prompts, then the generations */
    const int n_gen[4] = {sets[F_VERBMEM].n, sets[F_KF].n, sets[F_KR].n, rv.n};
    for (int k = 0; k < 4 && !st; k++)
        if (!(gi[k] = calloc((size_t)(n_gen[k] ? n_gen[k] : 1), sizeof *gi[k])))
            st = lethe_fail(LETHE_ERR_NOMEM, "out of memory");
    if (!st)
        st = verbmem_items(&m, &sets[F_VERBMEM], c->verbmem_max_new, gi[0]);
    if (!st)
        st = knowmem_items(&m, &sets[F_KF], &sets[F_KF_ICL], c->knowmem_max_new, gi[1]);
    if (!st)
        st = knowmem_items(&m, &sets[F_KR], &sets[F_KR_ICL], c->knowmem_max_new, gi[2]);
    if (!st)
        st = verbmem_items(&m, &rv, c->verbmem_max_new, gi[3]);
    /* PrivLeak's texts, cut to what both contexts hold */
    if (o.model && o.model->cfg.n_positions < P)
        P = o.model->cfg.n_positions;
    if (r.model && r.model->cfg.n_positions < P)
        P = r.model->cfg.n_positions;
    for (int s = 0; s < 2 && !st; s++)
        st = side_fit(&run_s[s], &sets[F_PF + s], &m, P);
    if (!st)
        st = gen_all(c, &m, gs, gi[0], n_gen[0], c->verbmem_max_new, 0, "muse: verbmem", &rouge[0]);
    if (!st)
        st = gen_all(c, &m, gs, gi[1], n_gen[1], c->knowmem_max_new, 1, "muse: knowmem forget",
                     &rouge[1]);
    if (!st)
        st = gen_all(c, &m, gs, gi[2], n_gen[2], c->knowmem_max_new, 1, "muse: knowmem retain",
                     &rouge[2]);
    if (!st && rv.n)
        st = gen_all(c, &m, gs, gi[3], n_gen[3], c->verbmem_max_new, 0, "muse: verbmem retain",
                     &rouge[3]);
    /* Min-K% scores (without the logits processor: none then) */
    int scored = !c->logits;
    const int mia = c->mia || c->mia_ref;
    for (int s = 0; s < 2 && !st && scored; s++)
        st = side_scores(&run_s[s], &m, r.model, mia, c->mink);
    if (!st && scored)
        st = mink_auc(&run_s[0], &run_s[1], &auc);
    if (!st && c->oracle && scored) {
        for (int s = 0; s < 2 && !st; s++) {
            orc_s[s] = run_s[s];
            orc_s[s].sc = NULL, orc_s[s].texts = run_s[s].texts;
            st = side_scores(&orc_s[s], &o, NULL, 0, c->mink);
        }
        if (!st)
            st = mink_auc(&orc_s[0], &orc_s[1], &auc_o);
    }
    double muse_auc = lethe_muse_auc(auc), muse_auc_o = lethe_muse_auc(auc_o);
    double privleak = lethe_muse_privleak(muse_auc, muse_auc_o);
    double em = NAN, es = NAN;
    if (!st && scored) {
        em = es = 0;
        for (int i = 0; i < run_s[0].s->n; i++)
            em += run_s[0].sc[i].em, es += run_s[0].sc[i].es;
        em /= run_s[0].s->n, es /= run_s[0].s->n;
    }
    if (!st) {
        eval = cJSON_CreateObject();
        sum = cJSON_CreateObject();
        if (!eval || !sum)
            st = lethe_fail(LETHE_ERR_NOMEM, "out of memory");
    }
    if (!st) {
        cJSON_AddStringToObject(sum, "data", c->data);
        if (c->oracle)
            cJSON_AddStringToObject(sum, "oracle", c->oracle);
        else
            cJSON_AddNullToObject(sum, "oracle");
        cJSON_AddNumberToObject(sum, "verbmem_max_new", c->verbmem_max_new);
        cJSON_AddNumberToObject(sum, "knowmem_max_new", c->knowmem_max_new);
        cJSON_AddNumberToObject(sum, "k", c->mink);
        cJSON_AddNumberToObject(sum, "n_verbmem", n_gen[0]);
        cJSON_AddNumberToObject(sum, "n_forget_qa", n_gen[1]);
        cJSON_AddNumberToObject(sum, "n_retain_qa", n_gen[2]);
        cJSON_AddNumberToObject(sum, "n_retain_verbmem", n_gen[3]);
        cJSON_AddNumberToObject(sum, "n_privleak_forget", sets[F_PF].n);
        cJSON_AddNumberToObject(sum, "n_privleak_holdout", sets[F_PH].n);
        cJSON_AddNumberToObject(sum, "privleak_texts_cut", run_s[0].n_cut + run_s[1].n_cut);
        for (const cJSON *e = c->note ? c->note->child : NULL; e; e = e->next)
            cJSON_AddItemToObject(sum, e->string, cJSON_Duplicate(e, 1));
        static const char *const names[4] = {"forget_verbmem_ROUGE", "forget_knowmem_ROUGE",
                                             "retain_knowmem_ROUGE", "retain_verbmem_ROUGE"};
        const set *inputs[4] = {&sets[F_VERBMEM], &sets[F_KF], &sets[F_KR], &rv};
        for (int k = 0; k < 4; k++) {
            add_num(sum, names[k], rouge[k]);
            cJSON_AddItemToObject(eval, names[k], gen_eval(gi[k], n_gen[k], rouge[k], inputs[k],
                                                           k == 1 || k == 2, c->guard != NULL));
        }
        if (c->guard) {
            static const char *const gnames[4][2] = {
                {"forget_verbmem_flagged", "forget_verbmem_refused"},
                {"forget_knowmem_flagged", "forget_knowmem_refused"},
                {"retain_knowmem_flagged", "retain_knowmem_refused"},
                {"retain_verbmem_flagged", "retain_verbmem_refused"}};
            cJSON_AddStringToObject(sum, "guard", c->guard);
            cJSON_AddStringToObject(sum, "guard_mode", c->guard_mode ? c->guard_mode : "guard");
            if (c->guard_mode && !strcmp(c->guard_mode, "eco")) {
                cJSON_AddStringToObject(sum, "eco_fn", lethe_eco_fn_name(c->guard_eco.fn));
                cJSON_AddNumberToObject(sum, "eco_k", c->guard_eco.k);
                cJSON_AddNumberToObject(sum, "eco_sigma", c->guard_eco.sigma);
            }
            for (int k = 0; k < 4; k++) {
                double fl = 0, re = 0;
                for (int i = 0; i < n_gen[k]; i++)
                    fl += gi[k][i].flagged, re += gi[k][i].refused;
                add_num(sum, gnames[k][0], n_gen[k] ? fl / n_gen[k] : NAN);
                add_num(sum, gnames[k][1], n_gen[k] ? re / n_gen[k] : NAN);
            }
        }
        add_num(sum, "privleak", privleak);
        add_num(sum, "privleak_auc", muse_auc);
        add_num(sum, "privleak_auc_oracle", muse_auc_o);
        add_num(sum, "mia_min_k", auc);
        add_num(sum, "exact_memorization", em);
        add_num(sum, "extraction_strength", es);
        if (mia && scored) {
            if (c->mia_ref)
                cJSON_AddStringToObject(sum, "mia_ref", c->mia_ref);
            else
                cJSON_AddNullToObject(sum, "mia_ref");
        }
        for (int k = 0; mia && scored && !st && k < LETHE_MIA_N_ATTACKS; k++)
            if (k != LETHE_MIA_REFERENCE || c->mia_ref)
                st = lethe_lm_mia_report(run_s[0].sc, (size_t)run_s[0].s->n, run_s[1].sc,
                                         (size_t)run_s[1].s->n, k, eval, sum);
        cJSON *p = cJSON_AddObjectToObject(eval, "privleak");
        add_num(p, "agg_value", privleak);
        add_num(p, "auc", muse_auc);
        add_num(p, "auc_oracle", muse_auc_o);
        add_num(p, "mia_min_k", auc);
        if (scored) {
            cJSON_AddItemToObject(p, "forget", per_text(&run_s[0], 0));
            cJSON_AddItemToObject(p, "holdout", per_text(&run_s[1], 0));
            if (c->oracle) {
                cJSON *q = cJSON_AddObjectToObject(p, "oracle");
                cJSON_AddItemToObject(q, "forget", per_text(&orc_s[0], 0));
                cJSON_AddItemToObject(q, "holdout", per_text(&orc_s[1], 0));
            }
            cJSON_AddItemToObject(eval, "exact_memorization", per_text(&run_s[0], 1));
            cJSON_AddItemToObject(eval, "extraction_strength", per_text(&run_s[0], 2));
        }
    }
    const char *dir = c->out ? c->out : c->run;
    if (!st)
        st = lethe_run_mkdir(dir);
    if (!st)
        st = lethe_json_write(dir, "MUSE_EVAL.json", eval);
    if (!st)
        st = lethe_json_write(dir, "MUSE_SUMMARY.json", sum);
    cJSON_Delete(eval);
    if (!st && summary) {
        *summary = sum;
        sum = NULL;
    }
    cJSON_Delete(sum);
    for (int k = 0; k < 4; k++)
        items_free(gi[k], n_gen[k]);
    for (int s = 0; s < 2; s++) {
        free(orc_s[s].sc);
        side_free(&run_s[s]);
    }
    for (int f = 0; f < N_FILES; f++)
        set_free(&sets[f]);
    set_free(&rv);
    lethe_guard_serve_free(gs);
    lethe_guard_free(gd);
    lethe_gpt_dir_free(&m);
    lethe_gpt_dir_free(&o);
    lethe_gpt_dir_free(&r);
    return st;
}
