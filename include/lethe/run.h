/* Run directories (DESIGN §2): every stage reads and writes one.
 *
 *   RUN/model.safetensors  the parameters (F32, "layers.I.weight/bias"), with
 *                          __metadata__ holding "spec" (the architecture),
 *                          "config" (config.json as one line) and provenance
 *                          ("data", "data_hash", "exclude_hash", "seed",
 *                          "method", "parent_hash" where known)
 *   RUN/config.json        everything needed to reproduce the run
 *   RUN/log.jsonl          one JSON object per step
 *
 * Files are written atomically; the same inputs give byte-identical files. */
#ifndef LETHE_RUN_H
#define LETHE_RUN_H

#include <cjson/cJSON.h>

#include "lethe/dataset.h"
#include "lethe/net.h"
#include "lethe/status.h"
#include "lethe/task.h"

#include "lethe/api.h"
LETHE_API_BEGIN

typedef struct lethe_run {
    char dir[4096];
    lethe_net *net;         /* the model, parameters loaded */
    cJSON *config;          /* config.json */
    char task[64];          /* config "data": the task the model was trained on */
    lethe_task_opts opts;   /* config "limit", "window" */
    uint64_t seed;          /* config "seed" */
} lethe_run;

/* Create dir and its parents if needed; LETHE_ERR_IO if it cannot be. */
lethe_status lethe_run_mkdir(const char *dir);

/* Create dir (and parents) if needed and write model.safetensors and
 * config.json. meta holds extra provenance pairs (may be NULL, n_meta 0);
 * "spec" and "config" are added here. */
lethe_status lethe_run_save(const char *dir, const lethe_net *net, const cJSON *config,
                            const char *const *meta_kv, size_t n_meta);

/* What a run's config.json records of its data, after "data" and "model":
 * seed, limit, window, exclude (null without), split_seed, data_hash,
 * exclude_hash, n_train, in that order (the train and fit runs share it). */
void lethe_run_config_data(cJSON *j, uint64_t seed, long limit, long window,
                           const char *exclude, uint64_t split_seed, const char *data_hash,
                           const char *exclude_hash, long n_train);

/* Read a run directory. Missing or malformed files give LETHE_ERR_IO /
 * LETHE_ERR_FORMAT naming the file. Free with lethe_run_free. */
lethe_status lethe_run_load(const char *dir, lethe_run **out);
void lethe_run_free(lethe_run *run); /* NULL is a no-op */

/* Load the run's task with its options (limit, window): the exact data the
 * model was trained on. Caller frees both. */
lethe_status lethe_run_data(const lethe_run *run, lethe_dataset **train, lethe_dataset **test);

/* Write net's parameters to path as F32 safetensors with metadata "spec"
 * and the given pairs (meta_kv[2i] = key, meta_kv[2i+1] = value). */
lethe_status lethe_net_save(const lethe_net *net, const char *path, const char *const *meta_kv,
                            size_t n_meta);
/* A new net from a model file written by lethe_net_save (spec from the
 * metadata). A file without a spec, or with tensors that do not match it,
 * is LETHE_ERR_FORMAT. */
lethe_status lethe_net_load(const char *path, lethe_net **out);
/* Load parameters into an existing net; a file of another architecture is
 * LETHE_ERR_FORMAT naming the first tensor that differs. */
lethe_status lethe_net_load_params(lethe_net *net, const char *path);

/* Evaluation-mode outputs for rows of ds (every row when rows is NULL):
 * out receives (n, net->n_out) logits or standardised predictions. Batched
 * forward; results do not depend on the batch size. */
lethe_status lethe_predict(lethe_net *net, const lethe_dataset *ds, const lethe_rows *rows,
                           float *out);

/* How well net does on rows of ds (every row when rows is NULL): accuracy
 * in percent for classifiers; mean absolute and mean squared error in the
 * data's units (see t_scale) for regressors (accuracy is then NAN, and l1
 * and mse NAN for classifiers). */
typedef struct lethe_scores {
    long n;
    double accuracy, l1, mse;
} lethe_scores;
lethe_status lethe_score(lethe_net *net, const lethe_dataset *ds, const lethe_rows *rows,
                         lethe_scores *out);

LETHE_API_END
#endif
