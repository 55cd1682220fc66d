/* The engine of lethe's cached pipelines (lethe/tofu_pipeline.h,
 * lethe/muse_pipeline.h), internal to the library: stages and their runs,
 * their keys and stamps, and a scheduler running them in threads.
 *
 * A stage is one library run (a data set written, a GPT trained, an
 * unlearning or fine-tuning run, an evaluation) into its directory. Its key
 * is a SHA-256 of its kind, its settings (a JSON object), the files it reads
 * and the keys of the stages it reads; a finished stage's directory holds
 * pipeline.json (kind, settings, key, seconds), and a stage whose stamp
 * holds its key, and whose dependencies are all kept, is kept. The others
 * run, at most `jobs` at once, in threads; a stage that fails or is
 * interrupted (lethe/rundir.h's in-flight table) leaves no directory. */
#ifndef LETHE_PIPELINE_IMPL_H
#define LETHE_PIPELINE_IMPL_H

#include <pthread.h>
#include <stdint.h>
#include <stdio.h>

#include <cjson/cJSON.h>

#include "lethe/gpt_generate.h"
#include "lethe/gpt_train.h"
#include "lethe/lm_unlearn.h"
#include "lethe/status.h"

enum { PL_MAX_STAGES = 32, PL_MAX_DEPS = 4, PL_MAX_INPUTS = 8 };

typedef enum { PL_DATA, PL_TRAIN, PL_UNLEARN, PL_EVAL } pl_kind;

typedef struct pl_pipeline pl_pipeline;
typedef struct pl_stage pl_stage;

/* A data stage's run: write s->dir from s->ctx, a line of news to log. */
typedef lethe_status (*pl_data_fn)(pl_stage *s, FILE *log);
/* An eval stage's run of s->ctx through logits (NULL: the model's own)
 * with note (NULL: none) recorded; its summary into *summary. */
typedef lethe_status (*pl_eval_fn)(pl_stage *s, const lethe_gpt_logits_proc *logits,
                                   const cJSON *note, cJSON **summary);

struct pl_stage {
    pl_kind kind;
    const char *name, *dir, *log;
    cJSON *settings; /* what the key and the stamp record */
    int deps[PL_MAX_DEPS], n_deps;
    const char *inputs[PL_MAX_INPUTS]; /* files it reads beyond other stages' output */
    int n_inputs;
    char key[65];
    double seconds, t0;
    int kept, started, done, failed;
    int slot;    /* its directory in the table removed on a signal */
    int threads; /* OpenMP threads; 0: the default */
    pthread_t thread;
    int joinable;
    pl_pipeline *p;
    char error[1024];
    /* the run, by kind */
    lethe_gpt_run_cfg train;  /* PL_TRAIN */
    lethe_lm_run_cfg unlearn; /* PL_UNLEARN; its settings are recorded by pl_key */
    pl_data_fn data;          /* PL_DATA */
    pl_eval_fn eval;          /* PL_EVAL */
    void *ctx;                /* data and eval: their configuration (pl_alloc) */
    const char *whp;          /* eval: WHP's reinforced model (pl_eval_of) */
    double whp_alpha;
};

struct pl_pipeline {
    pl_stage s[PL_MAX_STAGES];
    int n;
    const char *work; /* logs go to WORK/logs */
    int jobs;         /* stages at once where the order allows */
    int threads;      /* the threads shared by stages side by side; 0: OpenMP's */
    /* called from the calling thread as each stage starts and finishes */
    void (*event)(void *ctx, const pl_stage *s, int done, int together);
    void *event_ctx;
    void **pool; /* every allocation the stages own */
    size_t n_pool, cap_pool;
    pthread_mutex_t mu;
    pthread_cond_t cv;
    int finished; /* stages finished and not yet collected */
};

/* A pipeline over the work directory, its stages' events to event (NULL:
 * none) with ctx; NULL when out of memory. Free with pl_free (NULL: a no-op). */
pl_pipeline *pl_new(const char *work, int jobs, int threads,
                    void (*event)(void *ctx, const pl_stage *s, int done, int together),
                    void *ctx);
void pl_free(pl_pipeline *p);
/* Create WORK/logs. */
lethe_status pl_logs(pl_pipeline *p);

/* A new string, or zeroed block, owned by p; NULL when out of memory. */
char *pl_fmt(pl_pipeline *p, const char *f, ...) __attribute__((format(printf, 2, 3)));
void *pl_alloc(pl_pipeline *p, size_t size);

/* A new stage logging to WORK/logs/NAME.log (NULL when out of memory: its
 * name, directory or log). */
pl_stage *pl_stage_new(pl_pipeline *p, pl_kind k, const char *name, const char *dir);
void pl_depend(pl_stage *s, const pl_stage *on);
void pl_input(pl_stage *s, const char *path);
void pl_set_str(pl_stage *s, const char *key, const char *v); /* NULL: null */
void pl_set_num(pl_stage *s, const char *key, double v);

/* A GPT trained from scratch on data (lethe_corpus_load's list; the parts
 * that are files are inputs) for `steps` steps, or `epochs` when steps is 0. */
pl_stage *pl_train_stage(pl_pipeline *p, const char *name, const char *dir, const char *data,
                         const char *preset, uint64_t seed, long epochs, long steps);

/* The method (lethe_lm_parse's name) into *m; LETHE_ERR_NOT_FOUND, or
 * LETHE_ERR_INVALID for sft, which is no unlearning method. */
lethe_status pl_check_method(const char *method, lethe_lm_cfg *m);

/* 1 when the method (lethe_lm_parse's name) is not stored as a model (WHP):
 * its unlearn stage is the reinforced model, evaluated through pl_eval_of. */
int pl_not_stored(const char *method);

typedef struct pl_unlearn_opts {
    const char *method;
    double lr;
    uint64_t seed;
    long whp_epochs; /* WHP: epochs of the reinforced model's fine-tune */
    const lethe_lm_overrides *over; /* NULL: none */
    long epochs;  /* > 0: over the method's own */
    int constant; /* 1: a constant rate from the first step (MUSE's) */
} pl_unlearn_opts;

/* Into *out, the stage unlearning `forget` from `from` with o's method (for
 * WHP: sft on forget, o->whp_epochs epochs), reading retain and idk (NULL:
 * none) when the method does; o->over applied last. LETHE_ERR_NOT_FOUND (the method), LETHE_ERR_INVALID
 * (o->over), LETHE_ERR_NOMEM. */
lethe_status pl_unlearn_stage(pl_pipeline *p, const char *name, const char *dir,
                              const pl_stage *from, const pl_unlearn_opts *o,
                              const char *forget, const char *retain, const char *idk,
                              pl_stage **out);

/* The evaluation s reads `model` and the oracle; with whp, it evaluates the
 * target's logits adjusted by the reinforced model `model` at WHP's default
 * alpha (recorded in s's settings) and reads the target too. */
void pl_eval_of(pl_stage *s, const pl_stage *model, const pl_stage *target,
                const pl_stage *oracle, int whp);

/* Key each stage from `first` on; a stage is kept only when it and every
 * stage it reads are. */
lethe_status pl_key(pl_pipeline *p, int first);

/* Run every stage not kept, at most p->jobs at once; LETHE_ERR_FAILED naming
 * the first that failed, its error and its log. */
lethe_status pl_run(pl_pipeline *p);

/* ---- summaries ---- */

/* The number `key` of the JSON object in DIR/FILE; NAN when missing. */
double pl_summary_number(const char *dir, const char *file, const char *key);
/* models[row]: run and each metric of DIR/FILE (null when missing). */
void pl_summary_model(cJSON *models, const char *row, const char *run, const char *dir,
                      const char *file, const char *const *metrics, int n_metrics);
/* j's method, name, preset, seed and unlearn_args (the strings args[0..n)). */
void pl_summary_head(cJSON *j, const char *method, const char *name, const char *preset,
                     uint64_t seed, const char *const *args, int n);
/* times[stage]: each stage's seconds, and j.stage_seconds_total. */
void pl_summary_seconds(cJSON *j, cJSON *times, const pl_pipeline *p);
/* Write j pretty-printed to path; LETHE_ERR_NOMEM (j NULL), LETHE_ERR_IO. */
lethe_status pl_write_json(const char *path, const cJSON *j);
/* pl_write_json, j deleted when it fails. */
lethe_status pl_write_summary(const char *path, cJSON *j);
/* Stage i's name into name (size n), its seconds and whether it was kept. */
void pl_stage_row(const pl_pipeline *p, int i, char *name, size_t n, double *seconds, int *kept);

#endif
