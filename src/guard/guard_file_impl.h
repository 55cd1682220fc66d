/* Pieces shared by the guard file's sources (internal to src/guard):
 * guard_file.c (the in-memory guard, targets, the name index, the
 * classifier bytes, retrieval) and guard_file_io.c (the LGRD format). */
#ifndef LETHE_GUARD_FILE_IMPL_H
#define LETHE_GUARD_FILE_IMPL_H

#include <stddef.h>
#include <stdint.h>

#include "lethe/guard_file.h"

typedef struct guard_svec { /* a sparse unit vector */
    uint32_t n;
    int32_t *col;
    float *val;
} guard_svec;

typedef struct guard_target {
    uint32_t id;
    char *name;
    size_t n_alias, n_ans, n_ngram;
    char **alias, **ans, **ngram;
    guard_svec *vec; /* (n_ans) */
    size_t ans0;     /* answers held by the targets before this one */
} guard_target;

struct lethe_guard {
    char *model_hash, *model_name;
    int dim;
    uint32_t next_id;
    guard_target *t; /* (n) increasing id */
    size_t n, cap;
    /* target names: open addressing over t[].name, slot = index + 1 (0
     * empty), linear probing; name_cap a power of two (or 0), kept at
     * least 2 * n; rebuilt when a target is removed */
    size_t *name_slot;
    size_t name_cap;
    lethe_guard_ac_t *ac;
    unsigned char *clf;
    size_t clf_len;
    size_t n_answers;
    float *scratch; /* (dim) for features */
};

/* A NUL-terminated copy of s[0..n), or NULL. */
char *guard_dup_n(const void *s, size_t n);
void guard_strs_free(char **s, size_t n);

/* The target named name[0..len) (exact bytes), or NULL. */
const guard_target *guard_find_name(const lethe_guard_t *g, const char *name, size_t len);

/* Add a new target with id `id` (greater than every id held). */
lethe_status guard_add_target_id(lethe_guard_t *g, uint32_t id, const char *name,
                                 const char *const *aliases, size_t n_aliases);

/* LETHE_OK when lethe_guard_clf_load accepts blob[0..len) (guard_file_io.c). */
lethe_status guard_check_clf(const void *blob, size_t len);

#endif
