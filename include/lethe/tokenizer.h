/* Byte-level BPE tokenizers, as GPT-2 defines them.
 *
 * Text is split into words by GPT-2's pattern
 *   's|'t|'re|'ve|'m|'ll|'d| ?\p{L}+| ?\p{N}+| ?[^\s\p{L}\p{N}]+|\s+(?!\S)|\s+
 * evaluated over UTF-8 (letters and numbers as Unicode 17 defines them, \s as
 * Unicode's White_Space; a byte that is not part of valid UTF-8 counts as one
 * character that is neither letter, number nor space). Each word starts as
 * its bytes, one token per byte, and merges are applied by rank, lowest first
 * (leftmost first among equals), until no adjacent pair has a merge. Encoding
 * followed by decoding gives back any byte string exactly, invalid UTF-8 and
 * NUL bytes included, provided every one of the 256 bytes has a token (the
 * loaders and the trainer make sure of that).
 *
 * Files: GPT-2's vocab.json + merges.txt, and Hugging Face's tokenizer.json of
 * the BPE kind with a ByteLevel pre-tokenizer (merges written as "a b" strings
 * or as [a, b] pairs). Token strings in those files spell bytes with GPT-2's
 * byte-to-unicode alphabet (lethe_tokenizer_byte_char). Gzip-compressed files
 * are read transparently. lethe writes tokenizer.json in Hugging Face's layout.
 *
 * A tokenizer is read-only once built: encode and decode may run on it from
 * several threads at once. Errors set a one-line detail naming the file and
 * the problem (lethe_error_detail). */
#ifndef LETHE_TOKENIZER_H
#define LETHE_TOKENIZER_H

#include <stddef.h>
#include <stdint.h>

#include "lethe/progress.h"
#include "lethe/status.h"

#include "lethe/api.h"
LETHE_API_BEGIN

typedef struct lethe_tokenizer lethe_tokenizer_t;

/* Ids are below this bound. */
#define LETHE_TOKENIZER_MAX_ID (1u << 22)

/* ---- GPT-2's byte alphabet and word splitting --------------------------- */

/* The code point that spells byte b in GPT-2's files: bytes '!'..'~',
 * 0xA1..0xAC and 0xAE..0xFF stand for themselves, the other 68 take U+0100,
 * U+0101, ... in byte order (so ' ' is U+0120 'Ġ', '\n' is U+010A 'Ċ'). */
uint32_t lethe_tokenizer_byte_char(unsigned char b);
/* The byte spelled by code point cp, or -1 when cp is not in the alphabet. */
int lethe_tokenizer_char_byte(uint32_t cp);

/* Where the word starting at text[pos] ends (pos < len): the index one past
 * its last byte, always > pos. Splitting a text is calling this from 0 until
 * the end; the words cover the text exactly. Needs no tokenizer. */
size_t lethe_tokenizer_split_next(const void *text, size_t len, size_t pos);

/* ---- building, inspecting, freeing -------------------------------------- */

/* An empty tokenizer, to fill with add_token and add_merge. NULL (detail set)
 * when out of memory. Free with lethe_tokenizer_free (NULL is a no-op). */
lethe_tokenizer_t *lethe_tokenizer_new(void);
void lethe_tokenizer_free(lethe_tokenizer_t *t);

/* Give token `id` (< LETHE_TOKENIZER_MAX_ID) the bytes[0..len) (len >= 1).
 * A special token (such as "<|endoftext|>") decodes to its bytes but is never
 * produced by encode nor used by merges. Errors (LETHE_ERR_FORMAT): the id is
 * taken, or a non-special token already has these bytes. */
lethe_status lethe_tokenizer_add_token(lethe_tokenizer_t *t, uint32_t id, const void *bytes,
                                       size_t len, int special);

/* Append the merge of tokens a and b (ranked after every merge added before),
 * whose result is the non-special token holding a's bytes then b's; its id
 * goes to *result (which may be NULL). Errors (LETHE_ERR_FORMAT): a or b is
 * not a non-special token, or their concatenation is not in the vocabulary.
 * A pair that already has a merge keeps its first rank (and succeeds). */
lethe_status lethe_tokenizer_add_merge(lethe_tokenizer_t *t, uint32_t a, uint32_t b,
                                       uint32_t *result);

/* LETHE_OK when every byte 0..255 has a non-special token, else
 * LETHE_ERR_FORMAT naming the first byte missing. `name` labels the message. */
lethe_status lethe_tokenizer_check(const lethe_tokenizer_t *t, const char *name);

/* One past the largest id (ids below it may be unused). */
size_t lethe_tokenizer_vocab_size(const lethe_tokenizer_t *t);
/* How many ids have a token. */
size_t lethe_tokenizer_n_tokens(const lethe_tokenizer_t *t);
size_t lethe_tokenizer_n_merges(const lethe_tokenizer_t *t);
/* The bytes of token `id` (*len set), or NULL when no token has that id. The
 * bytes belong to the tokenizer. */
const unsigned char *lethe_tokenizer_token(const lethe_tokenizer_t *t, uint32_t id, size_t *len);
int lethe_tokenizer_is_special(const lethe_tokenizer_t *t, uint32_t id);
/* The non-special token holding bytes[0..len): 1 and *id, or 0. */
int lethe_tokenizer_find(const lethe_tokenizer_t *t, const void *bytes, size_t len, uint32_t *id);
/* Merge number `rank` (< n_merges): its pair and result. */
void lethe_tokenizer_merge(const lethe_tokenizer_t *t, size_t rank, uint32_t *a, uint32_t *b,
                           uint32_t *result);

/* ---- encoding and decoding ---------------------------------------------- */

/* Encode text[0..len) (any bytes). *ids (caller frees with free(); NULL when
 * *n is 0) holds *n ids. LETHE_ERR_UNSUPPORTED when a byte of the text has no
 * token (see lethe_tokenizer_check), LETHE_ERR_NOMEM. */
lethe_status lethe_tokenizer_encode(const lethe_tokenizer_t *t, const void *text, size_t len,
                                    uint32_t **ids, size_t *n);

/* Decode ids into their bytes, concatenated: *out (caller frees with free())
 * holds *len bytes and a NUL after them. LETHE_ERR_INVALID "id N is not in
 * the vocabulary" for an unknown id. */
lethe_status lethe_tokenizer_decode(const lethe_tokenizer_t *t, const uint32_t *ids, size_t n,
                                    unsigned char **out, size_t *len);

/* ---- files ---------------------------------------------------------------- */

/* GPT-2's vocab.json (an object token -> id) and merges.txt (an optional
 * "#version" line, then one "a b" pair per line, rank order). */
lethe_status lethe_tokenizer_load_gpt2(const char *vocab_path, const char *merges_path,
                                       lethe_tokenizer_t **out);
/* The same from memory; the names label messages ("vocab.json:...", ...). */
lethe_status lethe_tokenizer_parse_gpt2(const char *vocab, size_t vocab_len,
                                        const char *vocab_name, const char *merges,
                                        size_t merges_len, const char *merges_name,
                                        lethe_tokenizer_t **out);

/* Hugging Face's tokenizer.json: model.type "BPE" with model.vocab and
 * model.merges, added_tokens (taken as special tokens), a ByteLevel (or null)
 * pre_tokenizer without add_prefix_space, no normalizer. What lethe cannot
 * reproduce (another pre-tokenizer, a normalizer, a subword prefix or suffix)
 * fails with LETHE_ERR_UNSUPPORTED saying which. */
lethe_status lethe_tokenizer_load_json(const char *path, lethe_tokenizer_t **out);
lethe_status lethe_tokenizer_parse_json(const char *buf, size_t len, const char *name,
                                        lethe_tokenizer_t **out);

/* tokenizer.json text in Hugging Face's layout (BPE model, ByteLevel
 * pre-tokenizer and decoder, vocab in id order, merges as [a, b] pairs,
 * special tokens as added_tokens), which lethe_tokenizer_parse_json reads
 * back to the same tokenizer. Ids without a token are skipped. *text is
 * NUL-terminated; the caller frees it with free(). Deterministic. */
lethe_status lethe_tokenizer_to_json(const lethe_tokenizer_t *t, char **text);
/* Write it atomically to path. */
lethe_status lethe_tokenizer_save_json(const lethe_tokenizer_t *t, const char *path);

/* ---- training -------------------------------------------------------------- */

/* The minimum pair count lethe trains tokenizers with unless told otherwise
 * (the GPT runs' own tokenizer, lethe tokenizer train): a pair seen once is
 * not worth a token. */
#define LETHE_TOKENIZER_MIN_FREQUENCY 2

typedef struct lethe_tokenizer_train_opts {
    /* Stop early when the most frequent pair occurs fewer times (0 and 1 both
     * mean: merge while any pair occurs). */
    uint64_t min_frequency;
    /* Special tokens (valid UTF-8, distinct), given the ids after the merged
     * tokens; they count towards vocab_size. */
    const char *const *special;
    size_t n_special;
    /* NULL, or the progress of the two phases: it is re-initialised (with its
     * own out, label and quiet) to count the texts' bytes as the words are
     * counted, then the merges; a phase whose line or bar was shown is
     * finished before the next. */
    lethe_progress *progress;
} lethe_tokenizer_train_opts;

/* Byte-level BPE training. The vocabulary starts as the 256 bytes (id = byte
 * value); the texts are split into words and the words counted; then the most
 * frequent adjacent pair (over all word occurrences; ties go to the smaller
 * first id, then the smaller second id) is merged into a new token, the next
 * id, until the vocabulary holds vocab_size tokens (special ones included) or
 * no pair is left. texts[i] has lens[i] bytes (any bytes). opts may be NULL.
 * Deterministic: the same texts and options give the same tokenizer.
 * Errors: LETHE_ERR_INVALID for vocab_size < 256 + n_special or above
 * LETHE_TOKENIZER_MAX_ID, or a bad special token; LETHE_ERR_NOMEM.
 * The caller frees *out with lethe_tokenizer_free. */
lethe_status lethe_tokenizer_train(const char *const *texts, const size_t *lens, size_t n_texts,
                                   size_t vocab_size, const lethe_tokenizer_train_opts *opts,
                                   lethe_tokenizer_t **out);

LETHE_API_END
#endif
