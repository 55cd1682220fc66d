/* MUSE's experiment end to end (docs/muse.md, "The pipeline"): the corpus
 * (lethe_muse_write), a target GPT trained on the forget and retain1 raw
 * text and an oracle on retain1 alone with the same recipe and seed
 * (lethe_gpt_run), the target unlearned on raw/forget.jsonl with
 * raw/retain1.jsonl as the retain set of GDR/KLR (lethe_lm_run), and MUSE's
 * evaluation of target, oracle and unlearned model against the oracle
 * (lethe_muse_eval_run). For news, also scalability (the target unlearned on
 * each nested fold scal/forget_K.jsonl) and sustainability (sust/forget_K.jsonl
 * unlearned in sequence, each run starting from the one before), each
 * evaluated; fold 1 of both is the forget set, so its row is the unlearned
 * model's.
 *
 * Stages, their keys, stamps, threads and cleanup are those of
 * lethe/tofu_pipeline.h: a stage whose pipeline.json holds the key of its
 * settings, its input files and the stages it reads is kept; the others run,
 * at most `jobs` at once, and one that fails or is interrupted leaves no
 * directory. WHP's unlearn stage is the reinforced model (sft on the forget
 * text), evaluated as the target's logits adjusted by it. */
#ifndef LETHE_MUSE_PIPELINE_H
#define LETHE_MUSE_PIPELINE_H

#include <stdint.h>

#include <cjson/cJSON.h>

#include "lethe/lm_unlearn.h"
#include "lethe/pipeline.h"
#include "lethe/muse.h"
#include "lethe/status.h"

#include "lethe/api.h"
LETHE_API_BEGIN

enum { LETHE_MUSE_MAX_STAGES = 24 };

typedef struct lethe_muse_pipeline_cfg {
    const char *work;   /* the work directory ("muse-work"); stages under WORK/CORPUS */
    lethe_muse_corpus corpus; /* news (with scal and sust) or books (news) */
    const char *method; /* an LM method or variant of lethe_lm_parse but sft, idknll and
                           idkdpo ("npo_gdr", MUSE's NPO with the GDR regulariser) */
    const char *name;   /* the unlearned run's directory under WORK/CORPUS; NULL: method */
    const char *preset; /* the model ("tiny") */
    const char *data;   /* a MUSE corpus directory; NULL: generated into WORK/CORPUS/data */
    uint64_t seed;      /* the corpus's and every stage's (0) */
    long forget, retain, holdout; /* the generated corpus's documents (10, 10, 10) */
    long max_words;     /* and their cut in words (-1: 400 for news, 800 for books,
                           where 400 leaves too few cloze questions): smaller than
                           lethe_muse_defaults' so that the tiny target memorises its
                           forget text in minutes; 0: whole documents */
    long target_epochs; /* passes of target and oracle over their text (200), windows shifted */
    long target_steps;  /* or this many steps; 0: target_epochs */
    double target_lr;   /* their peak rate (3e-3; lethe train's 1e-3 for tiny is too slow
                           to memorise) */
    double unlearn_lr;  /* the unlearn stages' constant rate (1e-3: MUSE's 1e-5 is sized
                           for 7B models) */
    long unlearn_epochs; /* their epochs (10, MUSE's) */
    long whp_epochs;    /* WHP: epochs of the reinforced model's fine-tune (10) */
    int verbmem_max_new; /* the evaluation's greedy lengths of VerbMem's continuation */
    int knowmem_max_new; /* and of KnowMem's answers; 0: lethe_muse_eval_defaults' */
    int folds;          /* news: evaluate scal and sust (1) */
    int jobs;           /* stages at once where the order allows (2) */
    int threads;        /* the threads shared by stages side by side; 0: OpenMP's
                           default (OMP_NUM_THREADS, else the cores) */
    const lethe_lm_overrides *unlearn; /* the unlearn stages' settings over the
                           pipeline's (lethe_lm_run_apply); NULL: none */
    const char *const *unlearn_args; /* how they were given (recorded in the summary) */
    int n_unlearn_args;
    /* called from the calling thread as each stage starts and finishes */
    void (*event)(void *ctx, const lethe_pipeline_stage_info *s);
    void *event_ctx;
} lethe_muse_pipeline_cfg;

/* The defaults above. */
void lethe_muse_pipeline_defaults(lethe_muse_pipeline_cfg *c);

typedef struct lethe_muse_pipeline_result {
    cJSON *summary;  /* MUSE_PIPELINE.json's object (cJSON_Delete it): corpus, method,
                        name, preset, seed, unlearn_args, models (target, oracle,
                        unlearned: run, forget_verbmem_ROUGE, forget_knowmem_ROUGE,
                        retain_knowmem_ROUGE, privleak), news with folds: scal and sust
                        (forget_1 .. forget_4: the same), seconds per stage,
                        stage_seconds_total */
    char path[4200]; /* where it was written: WORK/CORPUS/NAME/MUSE_PIPELINE.json */
    int n_stages;
    lethe_pipeline_stage stages[LETHE_MUSE_MAX_STAGES];
} lethe_muse_pipeline_result;

/* Run the pipeline c into res (res->summary set on success only).
 * LETHE_ERR_INVALID (a setting out of range, a method that cannot read raw
 * text; an unknown method: NOT_FOUND), the corpus's errors (NOT_FOUND, IO,
 * FORMAT), LETHE_ERR_FAILED naming the stage that failed, its error and its
 * log, LETHE_ERR_NOMEM. */
lethe_status lethe_muse_pipeline_run(const lethe_muse_pipeline_cfg *c,
                                     lethe_muse_pipeline_result *res);

LETHE_API_END
#endif
