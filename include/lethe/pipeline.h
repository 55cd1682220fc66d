/* What the cached experiment pipelines (lethe/tofu_pipeline.h,
 * lethe/muse_pipeline.h) report of their stages: an event as a stage starts
 * and finishes, and each stage's time in the result. */
#ifndef LETHE_PIPELINE_H
#define LETHE_PIPELINE_H

#include "lethe/api.h"
LETHE_API_BEGIN

typedef struct lethe_pipeline_stage_info {
    const char *name; /* "base", "forget10-npo_gdr", "news-eval-npo_gdr-scal2", ... */
    const char *dir;  /* its directory */
    const char *log;  /* its log: the run's news and its summary, or its error */
    int done;         /* 0: starting; 1: finished */
    int together;     /* starting: others run beside it */
    double seconds;   /* finished: its time */
} lethe_pipeline_stage_info;

/* A stage of a finished pipeline. */
typedef struct lethe_pipeline_stage {
    char name[96];
    double seconds; /* this run's, or the stamp's when kept */
    int kept;       /* 1: its stamp matched, it did not run */
} lethe_pipeline_stage;

LETHE_API_END
#endif
