/* Words, word n-grams and a set of their hashes, for fitting a guard
 * (internal to src/guard; the rules are in lethe/guard_fit.h). */
#ifndef LETHE_GUARD_FIT_TEXT_H
#define LETHE_GUARD_FIT_TEXT_H

#include <stddef.h>
#include <stdint.h>

#include "lethe/guard_fit.h"

/* One word of a text: bytes [s, e), a maximal run of word bytes. */
typedef struct fit_word {
    size_t s, e;
} fit_word;

/* The words of t into a new *w (free with free()); their number, or
 * (size_t)-1 when out of memory. */
size_t fit_split(const char *t, fit_word **w);

/* The hash of the normalised n-gram of words w[i .. i + n) of t (the words
 * lowercased, joined by one space); never 0. */
uint64_t fit_ngram_hash(const char *t, const fit_word *w, size_t i, size_t n);

/* 1 when one of words w[i .. i + n) is not a stopword. */
int fit_has_content(const char *t, const fit_word *w, size_t i, size_t n);

/* A set of non-zero 64-bit keys, open addressing. */
typedef struct fit_set {
    uint64_t *k;
    size_t cap, n;
} fit_set;

/* 1 added, 0 present, -1 out of memory. */
int fit_set_add(fit_set *s, uint64_t key);
int fit_set_has(const fit_set *s, uint64_t key);
void fit_set_free(fit_set *s);

/* Every n-gram (n <= LETHE_GUARD_NGRAM_MAX) of text t into s. LETHE_ERR_NOMEM. */
lethe_status fit_set_add_text(fit_set *s, const char *t);

/* Targets derived from the forget questions q[0..n) against the retain
 * n-grams r (lethe/guard_fit.h): added to guard g. *added gets how many. */
lethe_status fit_derive_targets(lethe_guard_t *g, const char *const *q, size_t n,
                                const fit_set *r, size_t *added);

#endif
