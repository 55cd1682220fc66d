/* `lethe guard fit` over MUSE's layout (internal to src/guard; the rules
 * are in lethe/guard_fit.h). */
#ifndef LETHE_GUARD_FIT_MUSE_H
#define LETHE_GUARD_FIT_MUSE_H

#include <stddef.h>

#include <cjson/cJSON.h>

#include "lethe/corpus.h"
#include "lethe/guard_fit.h"

typedef struct guard_muse {
    lethe_corpus *forget, *retain[2]; /* raw/forget, retain1, retain2 */
    char **fq, **fa;              /* forget passages: prompt, whole passage (nf) */
    size_t nf, *owner;            /* owner[i]: the forget document of passage i */
    lethe_guard_target_spec *t;   /* one target a forget document (nt) */
    size_t nt;
    char **rq, **ra;              /* retain passages (nr_all); the first nr fit the classifier */
    size_t nr, nr_all, excluded;  /* excluded: held out (privleak retain passages) */
    cJSON *held[3];               /* privleak/retain.json and knowmem's retain questions */
    const char **more;            /* their texts, and the held-out passages' (n_more) */
    size_t n_more;
} guard_muse;

/* 1 when data holds MUSE's layout (verbmem/forget.json). */
int guard_fit_is_muse(const char *data);

/* Load m (zeroed first by the caller) from data; paths[0..3) get the forget,
 * retain and held-out files read (the caller frees them). */
lethe_status guard_muse_load(const char *data, guard_muse *m, char *paths[3]);
void guard_muse_free(guard_muse *m);

#endif
