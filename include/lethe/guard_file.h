/* The guard file: everything a served model's guard needs, in one file.
 *
 * A guard (lethe_guard_t) holds, for one model:
 *   - the model hash (a caller-supplied string, at most
 *     LETHE_GUARD_MODEL_HASH_MAX bytes, e.g. the SHA-256 of
 *     model.safetensors) and a model name;
 *   - targets, each with a uint32 id (given out in increasing order, never
 *     reused within a guard, kept through save and load), a name (unique in
 *     the guard, compared byte for byte), aliases, forget answers (the texts
 *     retrieved for a flagged prompt) and forbidden n-grams;
 *   - an Aho-Corasick automaton (lethe/guard_index.h) over every target's
 *     name, aliases and n-grams, each under the target's id;
 *   - optionally a prompt classifier, as the bytes lethe_guard_clf_save
 *     writes (checked with lethe_guard_clf_load when set and when loaded,
 *     otherwise kept opaque).
 *
 * Retrieval: each forget answer gets a hashed word and character n-gram
 * vector (lethe_guard_features with a HASH extractor of the guard's `dim`
 * buckets; unit length, kept sparse) when it is added or loaded. A query
 * computes the prompt's vector once and ranks the answers by cosine
 * similarity (their dot product), ties to the lower answer index. The dot
 * products come from an inverted index (per bucket, the answers that have
 * it), so a query costs the postings of the prompt's buckets plus one pass
 * over the answers' scores rather than a pass over every answer's vector.
 *
 * Answers are numbered 0 .. lethe_guard_answer_count-1 across the guard:
 * the targets in id order, each target's answers in the order added. The
 * numbers change when a target is removed.
 *
 * The file (little-endian), version LETHE_GUARD_FILE_VERSION:
 *   "LGRD"  u32 version  u32 section count (2 or 3)
 *   sections, each: u32 tag, u64 length, length bytes; in this order:
 *     "META": str model hash, str model name, u32 next id, u32 dim
 *     "TGTS": u32 target count; per target, in increasing id order:
 *             u32 id, str name, u32 n + n str aliases, u32 n + n str
 *             answers, u32 n + n str n-grams
 *     "CLFB": the classifier bytes (only when one is set)
 *   32 bytes: the SHA-256 of every byte before them.
 * A str is a u32 length and that many bytes, none of them NUL. Names,
 * aliases and n-grams must normalise to a pattern the automaton accepts;
 * answers must be non-empty. Loading checks all of it (and that nothing
 * follows), and any departure is LETHE_ERR_FORMAT with a one-line detail.
 * Saving is deterministic: a loaded guard saves to the bytes it was loaded
 * from.
 *
 * Threads: the const functions and scans may run at once on one guard;
 * changes need exclusive access (as lethe/guard_index.h).
 *
 * Errors set a one-line detail (lethe_error_detail). */
#ifndef LETHE_GUARD_FILE_H
#define LETHE_GUARD_FILE_H

#include <stddef.h>
#include <stdint.h>

#include "lethe/guard_classifier.h"
#include "lethe/guard_index.h"
#include "lethe/status.h"

#include "lethe/api.h"
LETHE_API_BEGIN

#define LETHE_GUARD_FILE_VERSION 1u
#define LETHE_GUARD_FILE_MAX_DIM (1 << 18) /* retrieval hash buckets, at most */
#define LETHE_GUARD_MAX_TEXT (1u << 24)    /* bytes of an answer or name, at most */

typedef struct lethe_guard lethe_guard_t;

/* An empty guard for the model with hash model_hash (required, 1 ..
 * LETHE_GUARD_MODEL_HASH_MAX bytes) and name model_name (NULL for ""),
 * retrieval vectors of dim buckets (0: LETHE_GUARD_HASH_DIM; 2 ..
 * LETHE_GUARD_FILE_MAX_DIM). NULL (detail set) on a bad argument or out of
 * memory. Free with lethe_guard_free (NULL is a no-op). */
lethe_guard_t *lethe_guard_new(const char *model_hash, const char *model_name, int dim);
void lethe_guard_free(lethe_guard_t *g);

const char *lethe_guard_model_hash(const lethe_guard_t *g); /* owned by g */
const char *lethe_guard_model_name(const lethe_guard_t *g); /* owned by g */
int lethe_guard_dim(const lethe_guard_t *g);

/* ---- targets ----------------------------------------------------------------- */

/* Add a target named name with aliases[0..n_aliases) (NULL when none); its
 * new id into *id (may be NULL). Strings are copied. LETHE_ERR_INVALID
 * (nothing changed) when the name is taken, or a name or alias is empty
 * after normalisation, too long, or the ids ran out; LETHE_ERR_NOMEM. */
lethe_status lethe_guard_add_target(lethe_guard_t *g, const char *name,
                                    const char *const *aliases, size_t n_aliases,
                                    uint32_t *id);

/* Add a forget answer (non-empty, at most LETHE_GUARD_MAX_TEXT bytes) or a
 * forbidden n-gram (normalising to a pattern) to target id, copied.
 * LETHE_ERR_NOT_FOUND for an unknown id; LETHE_ERR_INVALID; NOMEM. */
lethe_status lethe_guard_add_answer(lethe_guard_t *g, uint32_t id, const char *text);
lethe_status lethe_guard_add_ngram(lethe_guard_t *g, uint32_t id, const char *text);

/* Remove target id: its patterns from the automaton, its answers and
 * n-grams; the others are untouched. LETHE_ERR_NOT_FOUND for an unknown id. */
lethe_status lethe_guard_remove_target(lethe_guard_t *g, uint32_t id);

/* One target, as lethe_guard_target_get shows it; every pointer is owned by
 * g and valid until the next change. */
typedef struct lethe_guard_target_info {
    uint32_t id;
    const char *name;
    size_t n_aliases, n_answers, n_ngrams;
    const char *const *aliases;
    const char *const *answers;
    const char *const *ngrams;
} lethe_guard_target_info;

/* Targets in increasing id order: count, and target number i (< count). */
size_t lethe_guard_target_count(const lethe_guard_t *g);
void lethe_guard_target_get(const lethe_guard_t *g, size_t i, lethe_guard_target_info *info);

/* The id of the target named name (exact bytes), or LETHE_ERR_NOT_FOUND. */
lethe_status lethe_guard_find(const lethe_guard_t *g, const char *name, uint32_t *id);

/* The automaton over names, aliases and n-grams (owned by g; scan it, do
 * not add to it or remove from it). */
lethe_guard_ac_t *lethe_guard_automaton(lethe_guard_t *g);

/* ---- the classifier ------------------------------------------------------------ */

/* Set (copy) the classifier bytes, which lethe_guard_clf_load must accept
 * (LETHE_ERR_INVALID otherwise); NULL or len 0 clears it. */
lethe_status lethe_guard_set_classifier(lethe_guard_t *g, const void *blob, size_t len);
/* The classifier bytes (owned by g), or NULL with *len 0 when none. */
const unsigned char *lethe_guard_classifier(const lethe_guard_t *g, size_t *len);

/* ---- retrieval -------------------------------------------------------------------- */

size_t lethe_guard_answer_count(const lethe_guard_t *g);
/* Answer number i (< count): its text (owned by g) and its target's id. */
const char *lethe_guard_answer(const lethe_guard_t *g, size_t i, uint32_t *target_id);

/* The min(k, answer count) answers most similar to prompt[0..len) into
 * idx_out[0..*n) (answer numbers) and scores_out[0..*n) (cosine, may be
 * NULL), best first, ties to the lower number. Each score is the dot
 * product summed in double over the answer's buckets in increasing order,
 * then rounded to float; an answer sharing no bucket with the prompt
 * scores 0 and still ranks. LETHE_ERR_NOMEM.
 *
 * The inverted index is built by the first retrieval after the answers
 * change (lethe_guard_add_answer, lethe_guard_remove_target, loading), in
 * time and memory linear in the answers' non-zero entries; adding answers
 * costs nothing until then. The build is serialised by a lock inside g, so
 * any number of threads may retrieve from one guard at once (changes still
 * need exclusive access). */
lethe_status lethe_guard_retrieve(const lethe_guard_t *g, const void *prompt, size_t len,
                                  size_t k, size_t *idx_out, float *scores_out, size_t *n);

/* ---- the file ---------------------------------------------------------------------- */

/* Serialise g into *buf (caller frees with free()), *len bytes. */
lethe_status lethe_guard_save_buf(const lethe_guard_t *g, unsigned char **buf, size_t *len);

/* Write g to path atomically (lethe/fileio.h). A path that exists must be
 * a regular file or a symbolic link to one: a directory, FIFO, device or
 * dangling link is refused with LETHE_ERR_INVALID, and left as it was. */
lethe_status lethe_guard_save(const lethe_guard_t *g, const char *path);

/* Read a guard from buf[0..len) into a new *out (NULL on failure). `name`
 * labels messages (NULL: "guard"). LETHE_ERR_FORMAT for anything
 * malformed; LETHE_ERR_NOMEM. */
lethe_status lethe_guard_load_buf(const void *buf, size_t len, const char *name,
                                  lethe_guard_t **out);
/* The same from a file (LETHE_ERR_IO when unreadable). */
lethe_status lethe_guard_load(const char *path, lethe_guard_t **out);
/* lethe_guard_load, then LETHE_ERR_FORMAT naming both hashes unless the
 * guard's model hash is expected_model_hash. */
lethe_status lethe_guard_load_checked(const char *path, const char *expected_model_hash,
                                      lethe_guard_t **out);

LETHE_API_END
#endif
