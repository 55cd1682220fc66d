/* TOFU's experiment end to end (docs/tofu.md, "The pipeline"): the
 * benchmark (lethe/authors.h), a base model pre-trained on corpora
 * (lethe_gpt_run), the base fine-tuned on the general-knowledge pairs, the
 * target fine-tuned on every author and the oracle on the retain split
 * (lethe_lm_run, sft), the unlearned model (lethe_lm_run with the method) and
 * TOFU's metrics of target, oracle and unlearned model (lethe_tofu_run).
 *
 * Each stage runs in a thread of this process, its directory under the work
 * directory. A finished stage's directory holds pipeline.json: the stage,
 * its settings, a key and its time. The key is a SHA-256 of the stage's
 * settings, of the files it reads (fine-tuning, forget, retain and refusal
 * files, evaluation sets, corpora given as files) and of the keys of the
 * stages it reads, so a stage whose stamp holds the same key is kept; the
 * others are removed and run, at most `jobs` at once where the order
 * allows, those side by side sharing the threads. A stage that fails or is
 * interrupted by SIGINT/SIGTERM (lethe/rundir.h) leaves no directory.
 * Results do not depend on the thread count (DESIGN §5). */
#ifndef LETHE_TOFU_PIPELINE_H
#define LETHE_TOFU_PIPELINE_H

#include <stdint.h>

#include <cjson/cJSON.h>

#include "lethe/lm_unlearn.h"
#include "lethe/pipeline.h"
#include "lethe/status.h"

#include "lethe/api.h"
LETHE_API_BEGIN

enum { LETHE_TOFU_MAX_STAGES = 12 };

typedef struct lethe_tofu_pipeline_cfg {
    const char *work;    /* the work directory ("tofu-work") */
    const char *split;   /* forgetXX, XX from 01 to 99 ("forget10") */
    const char *method;  /* an LM method or variant of lethe_lm_parse but sft ("npo_gdr") */
    const char *name;    /* the unlearned run's directory under WORK/SPLIT; NULL: method */
    const char *preset;  /* the model ("tiny") */
    const char *data;    /* a benchmark directory; NULL: generated into WORK/data */
    const char *corpora; /* pre-training corpora, as lethe_corpus_load ("moby") */
    uint64_t seed;       /* the benchmark's and every stage's (0) */
    long authors, qa;    /* the generated benchmark's size (200, 20) */
    long base_epochs;    /* passes over the corpora (2) */
    long base_steps;     /* or this many steps; 0: base_epochs */
    long know_epochs;    /* fine-tuning epochs on the general knowledge (30) */
    long reps;           /* copies of the general-knowledge pairs mixed into target's
                            and oracle's fine-tuning (3) */
    long sft_epochs;     /* fine-tuning epochs of target and oracle (20) */
    double sft_lr;       /* their peak rate, and the knowledge stage's (3e-3) */
    double unlearn_lr;   /* the unlearn stage's peak rate (1e-4; OpenUnlearning's 1e-5
                            is sized for 7B models fine-tuned at 1e-5) */
    long whp_epochs;     /* WHP: epochs of the reinforced model's fine-tune (10) */
    int max_new;         /* the evaluation's greedy answer length (200) */
    int jobs;            /* stages at once where the order allows (2) */
    int threads;         /* the threads shared by stages side by side; 0: OpenMP's
                            default (OMP_NUM_THREADS, else the cores) */
    const lethe_lm_overrides *unlearn; /* the unlearn stage's settings over the
                            pipeline's (lethe_lm_run_apply); NULL: none */
    const char *const *unlearn_args; /* how they were given (recorded in the summary) */
    int n_unlearn_args;
    /* called from the calling thread as each stage starts and finishes */
    void (*event)(void *ctx, const lethe_pipeline_stage_info *s);
    void *event_ctx;
} lethe_tofu_pipeline_cfg;

/* The defaults above. */
void lethe_tofu_pipeline_defaults(lethe_tofu_pipeline_cfg *c);

typedef struct lethe_tofu_pipeline_result {
    cJSON *summary;  /* TOFU_PIPELINE.json's object (cJSON_Delete it): split, method,
                        name, preset, seed, unlearn_args, models (target, oracle,
                        unlearned: run, forget_quality, model_utility,
                        forget_rougeL_recall, forget_prob, forget_truth_ratio), seconds
                        per stage, stage_seconds_total */
    char path[4200]; /* where it was written: WORK/SPLIT/NAME/TOFU_PIPELINE.json */
    int n_stages;
    lethe_pipeline_stage stages[LETHE_TOFU_MAX_STAGES];
} lethe_tofu_pipeline_result;

/* Run the pipeline c into res (res->summary set on success only).
 * LETHE_ERR_INVALID (a setting out of range, an unknown method: NOT_FOUND),
 * the benchmark's read errors (NOT_FOUND, IO, FORMAT), LETHE_ERR_FAILED
 * naming the stage that failed, its error and its log, LETHE_ERR_NOMEM. */
lethe_status lethe_tofu_pipeline_run(const lethe_tofu_pipeline_cfg *c,
                                     lethe_tofu_pipeline_result *res);

LETHE_API_END
#endif
