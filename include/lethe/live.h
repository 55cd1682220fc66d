/* Live models: a run directory's models held in memory, answering
 * predictions from many threads at once while deletions come in.
 *
 * lethe_live_open recognises the run in a directory: an ensemble
 * (sisa.json: lethe/sisa.h; s3t.json: lethe/s3t.h), a linear run (a
 * config.json whose "model" is ridge or logistic: lethe/linear.h) or a
 * plain classifier or regressor run (any other config.json with a
 * model.safetensors: lethe/run.h). It loads the models that serve: each
 * shard's model of an ensemble (its components), or the one model.
 *
 * Guarantees of a deletion (lethe_live_delete):
 *   - it returns only once its request is durably in the directory's
 *     ledger (lethe/ledger.h), recorded under the directory's lock
 *     (lethe/runlock.h);
 *   - a prediction that starts after it returned uses no component trained
 *     on any of its ids; predictions already running may finish with the
 *     components they started with. Each prediction works on a snapshot of
 *     the served set, taken when it starts; a deletion publishes a new one.
 * What happens to the affected components:
 *   - S3T: each affected shard switches to its longest surviving prefix,
 *     loaded inside the deletion, so the cut prefixes serve from the moment
 *     it returns; state.json, the removal of stale checkpoints and the
 *     ledger's "applied" follow in a background thread (lethe_s3t_apply);
 *   - SISA: each affected shard leaves the served set at once; a background
 *     thread retrains it (lethe_sisa_sync, which trains without the
 *     directory's lock, so a deletion meanwhile is recorded at once), loads
 *     the new models and puts them back; the request is then applied;
 *   - linear runs: the removal is applied and the model file replaced
 *     before the deletion returns (lethe_linear_run_forget); the new model
 *     then serves;
 *   - a plain run: deletions are LETHE_ERR_UNSUPPORTED.
 * Requests a crash or a stop left pending are treated as deleted when the
 * directory is opened (their components do not serve) and applied as above.
 *
 * The object is meant to be the directory's only writer while it serves:
 * a request that another process records is served (its components taken
 * out) only from the next background run on, which a deletion through this
 * object starts.
 *
 * Every call may come from any thread, except lethe_live_free, which no
 * other call on the same object may overlap. Failures set the calling
 * thread's detail message (lethe_error_detail). */
#ifndef LETHE_LIVE_H
#define LETHE_LIVE_H

#include <stddef.h>
#include <stdint.h>

#include "lethe/ledger.h"
#include "lethe/status.h"

#include "lethe/api.h"
LETHE_API_BEGIN

typedef struct lethe_live lethe_live_t;

/* Open the run in dir, load its serving models and, for an ensemble, start
 * its background thread (at once when requests are pending). A directory
 * that holds no run, or a run not trained yet, is an error naming it. Free
 * *out with lethe_live_free. */
lethe_status lethe_live_open(const char *dir, lethe_live_t **out);

/* Stop the background thread, after the work it is doing (a retrain is
 * finished, which may take a while; work not started stays pending in the
 * ledger for the next open), and free l. NULL is a no-op. */
void lethe_live_free(lethe_live_t *l);

/* "sisa", "s3t", "ridge", "logistic" or "net"; a static string. */
const char *lethe_live_kind(const lethe_live_t *l);
/* Features per input row. */
long lethe_live_features(const lethe_live_t *l);
/* Outputs per row: classes or targets. */
long lethe_live_outputs(const lethe_live_t *l);
/* 1 when the outputs are class scores, 0 for a regressor's predictions. */
int lethe_live_classifier(const lethe_live_t *l);

/* Outputs for n rows x (n, d), d == lethe_live_features(l), into the
 * caller's out (n, lethe_live_outputs(l)), exactly as lethe predict and
 * lethe_ensemble_predict compute them: an ensemble's aggregate of its
 * serving shards (vote counts, mean probabilities or mean logits;
 * regressors the mean), a single model's logits or standardised
 * predictions. When components is not NULL it receives, NUL-terminated and
 * cut at cap bytes, the components the answer used, comma-separated:
 * "shardK@KEY" per serving shard (KEY the checkpoint's content key), or
 * "KIND@SHA" (the first 16 hex digits of the model file's sha256).
 * LETHE_ERR_INVALID: n < 1, d not the model's width, a value not finite.
 * LETHE_ERR_FAILED: no component serves, saying why. */
lethe_status lethe_live_predict(lethe_live_t *l, const float *x, long n, long d, float *out,
                                char *components, size_t cap);

/* Delete the samples ids[0..n) (repeats count once) with the guarantees
 * above; *req_id receives the ledger's request number. An id not in the
 * training set, already deleted or excluded from training is
 * LETHE_ERR_INVALID naming such an id, and nothing is recorded. A
 * plain run is LETHE_ERR_UNSUPPORTED. Should a replacement model fail to
 * load after the request was recorded, its component stays out of the
 * served set, the background thread tries again (lethe_live_health says
 * why) and the deletion still returns LETHE_OK. */
lethe_status lethe_live_delete(lethe_live_t *l, const uint64_t *ids, long n, long *req_id);

/* The state of request req_id: LETHE_REQ_APPLIED once the directory's
 * ledger says so and the served set holds the result (SISA: the retrained
 * shards serve again), LETHE_REQ_RECEIVED before (S3T serves its cut
 * prefixes from the deletion on; the ledger follows). An unknown request is
 * LETHE_ERR_NOT_FOUND. */
lethe_status lethe_live_request_state(lethe_live_t *l, long req_id, lethe_req_state *state);

/* Requests the ledger holds as pending (0 without a ledger; -1, detail
 * set, when it cannot be read). */
long lethe_live_pending(lethe_live_t *l);

/* LETHE_OK while the background work and the reloads of models have gone
 * well; otherwise the status of the last failure, its message copied into
 * msg (cap bytes, NUL-terminated; msg may be NULL). Cleared by the next
 * background run that succeeds. */
lethe_status lethe_live_health(lethe_live_t *l, char *msg, size_t cap);

LETHE_API_END
#endif
