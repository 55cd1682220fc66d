/* The guard's target index: a text normaliser, an Aho-Corasick automaton
 * over normalised text, and a token trie for the constrained decoder.
 *
 * Normalisation (lethe_guard_normalize) is a pure byte map, with no locale:
 *   - ASCII letters A-Z become a-z; a-z and 0-9 are kept;
 *   - every byte >= 0x80 (the bytes of non-ASCII UTF-8) is kept unchanged,
 *     so "Café" becomes "café" but "É" stays "É", and non-ASCII spaces and
 *     punctuation (U+00A0, U+2019, ...) count as word bytes;
 *   - every other byte (ASCII whitespace, punctuation, control bytes, NUL) is
 *     a separator; each maximal run of separators becomes one space (0x20),
 *     and runs at the start or the end of the text are dropped.
 * So "  New-York's\tCafé! " normalises to "new york s café". The output is
 * never longer than the input. Invalid UTF-8 is kept byte for byte.
 *
 * The automaton holds patterns, each normalised when it is added and tagged
 * with a uint32 target id; several patterns (aliases) may share an id, and
 * one pattern text may carry several ids. A match is an occurrence of a
 * pattern in the normalised text at word boundaries: the byte before it and
 * the byte after it are a space or the edge of the text, so "al" matches in
 * "al gore" but not in "also". Matches may overlap and nest: with "new york"
 * and "york", the text "new york" has both.
 *
 * Transitions are stored as sorted child ranges in breadth-first order
 * (about 17 bytes per trie state, no per-state tables). A scan costs
 * amortised O(1) per text byte whatever the number of patterns (failure
 * links), plus O(1) per match reported (output links); what grows with the
 * automaton's size is only its memory, hence its cache misses.
 *
 * Building: add and remove only record patterns; the automaton is rebuilt by
 * lethe_guard_ac_build, or by the first scan or stream_init after a change,
 * in O(B + P log P) for B pattern bytes and P patterns.
 *
 * Threads: a scan or stream_init that finds the automaton out of date builds
 * it under the automaton's own mutex, so any number of threads may scan and
 * feed streams at once. add and remove need exclusive access: no scan
 * or stream may run on the automaton meanwhile, and streams started before a
 * change must be started again (feeding one aborts with an assertion). The
 * token trie is the same: advance is read-only, add and remove exclusive.
 *
 * Errors set a one-line detail (lethe_error_detail). */
#ifndef LETHE_GUARD_INDEX_H
#define LETHE_GUARD_INDEX_H

#include <stddef.h>
#include <stdint.h>

#include "lethe/status.h"

#include "lethe/api.h"
LETHE_API_BEGIN

/* The longest pattern (normalised bytes) and token sequence accepted. */
#define LETHE_GUARD_MAX_PATTERN 65535u
#define LETHE_GUARD_MAX_SEQUENCE 65535u

/* Serialisation format versions written by the savers. */
#define LETHE_GUARD_AC_VERSION 1u
#define LETHE_GUARD_TRIE_VERSION 1u

/* ---- normalisation -------------------------------------------------------- */

/* Normalise text[0..len) into out, which must have room for len bytes (out
 * may equal text). Returns the normalised length (<= len). */
size_t lethe_guard_normalize(const void *text, size_t len, unsigned char *out);

/* ---- the automaton ---------------------------------------------------------- */

typedef struct lethe_guard_ac lethe_guard_ac_t;

/* One match: target `id` spans normalised bytes [start, end). */
typedef struct lethe_guard_match {
    uint32_t id;
    size_t start, end;
} lethe_guard_match;

/* Called once per match, in order of end position (several matches ending at
 * one place: longest first, then by id). */
typedef void (*lethe_guard_match_fn)(void *ctx, const lethe_guard_match *m);

/* An empty automaton, or NULL (detail set) when out of memory. Free with
 * lethe_guard_ac_free (NULL is a no-op). */
lethe_guard_ac_t *lethe_guard_ac_new(void);
void lethe_guard_ac_free(lethe_guard_ac_t *ac);

/* Add pattern[0..len) (normalised here) for target `id`. Adding a (pattern,
 * id) pair already present does nothing and succeeds. LETHE_ERR_INVALID when
 * the pattern is empty after normalisation or longer than
 * LETHE_GUARD_MAX_PATTERN; LETHE_ERR_UNSUPPORTED when the index would pass
 * 2^31 bytes; LETHE_ERR_NOMEM. */
lethe_status lethe_guard_ac_add(lethe_guard_ac_t *ac, const void *pattern, size_t len,
                                uint32_t id);

/* Remove every pattern of target `id`; returns how many were removed. */
size_t lethe_guard_ac_remove(lethe_guard_ac_t *ac, uint32_t id);

/* How many (pattern, id) pairs the automaton holds. */
size_t lethe_guard_ac_count(const lethe_guard_ac_t *ac);

/* Pattern number i (< count; patterns keep the order they were added in,
 * removals close the gaps): its normalised bytes (owned by the automaton,
 * valid until the next add or remove), *len and *id. */
const unsigned char *lethe_guard_ac_pattern(const lethe_guard_ac_t *ac, size_t i, size_t *len,
                                            uint32_t *id);

/* Bring the automaton up to date now (otherwise the next scan does it).
 * LETHE_ERR_NOMEM leaves it out of date, to be retried. */
lethe_status lethe_guard_ac_build(lethe_guard_ac_t *ac);

/* Bytes of memory the automaton holds (patterns and built tables). */
size_t lethe_guard_ac_memory(const lethe_guard_ac_t *ac);

/* Normalise text[0..len) and call fn (may be NULL) on each match; *n_matches
 * (may be NULL) gets the count. Fails only when a needed build fails. */
lethe_status lethe_guard_ac_scan(lethe_guard_ac_t *ac, const void *text, size_t len,
                                 lethe_guard_match_fn fn, void *ctx, size_t *n_matches);

/* The same into out[0..cap): the first min(cap, *n_matches) matches in the
 * order above; *n_matches gets the total. */
lethe_status lethe_guard_ac_find(lethe_guard_ac_t *ac, const void *text, size_t len,
                                 lethe_guard_match *out, size_t cap, size_t *n_matches);

/* ---- streaming ------------------------------------------------------------ */

/* A scan fed text piece by piece, as a decoder produces it. The chunks may
 * split the text anywhere (inside a word or a UTF-8 sequence): the matches,
 * with positions in the normalised whole, are those of lethe_guard_ac_scan
 * on the concatenation. A match is reported once the byte after it is known
 * to be a boundary, that is when a separator arrives; at the end of the text,
 * lethe_guard_stream_end reports the matches the text's edge completes.
 *
 * The struct is plain data: copy it to branch (one copy per beam). The
 * automaton must outlive it and stay unchanged (see Threads above). */
typedef struct lethe_guard_stream {
    const lethe_guard_ac_t *ac;
    uint64_t generation; /* the automaton's change count at init */
    size_t pos;          /* bytes fed to the automaton, the leading space included */
    uint32_t state;      /* the automaton's state */
    int in_sep;          /* the last byte was a separator, or nothing came yet */
} lethe_guard_stream;

/* Start a stream at the beginning of a text, building the automaton first if
 * it is out of date (the only failure: LETHE_ERR_NOMEM from that build). */
lethe_status lethe_guard_stream_init(lethe_guard_stream *st, lethe_guard_ac_t *ac);

/* Feed text[0..len) (len may be 1: one byte at a time). Calls fn (may be
 * NULL) on each match completed and returns how many there were, so a
 * decoder asks "did a target just complete?" as feed(...) > 0. */
size_t lethe_guard_stream_feed(lethe_guard_stream *st, const void *text, size_t len,
                               lethe_guard_match_fn fn, void *ctx);

/* The matches that end at the text's end if the text ended here (fn may be
 * NULL); returns their count. The stream is unchanged and can be fed on. */
size_t lethe_guard_stream_end(const lethe_guard_stream *st, lethe_guard_match_fn fn, void *ctx);

/* ---- the token trie ------------------------------------------------------- */

/* Sequences of token ids, each tagged with a uint32 id (several sequences may
 * share one). Node 0 is the root; a cursor is a node index, standing for a
 * match in progress. The decoder keeps a set of cursors per beam; each new
 * token advances every cursor and also starts one at the root, so a stored
 * sequence is found wherever it starts in the generated tokens. */
typedef struct lethe_guard_trie lethe_guard_trie_t;

/* An empty trie, or NULL (detail set) when out of memory. Free with
 * lethe_guard_trie_free (NULL is a no-op). */
lethe_guard_trie_t *lethe_guard_trie_new(void);
void lethe_guard_trie_free(lethe_guard_trie_t *t);

/* Add seq[0..n) for `id`. Adding a (sequence, id) pair already present does
 * nothing and succeeds. LETHE_ERR_INVALID when n is 0 or above
 * LETHE_GUARD_MAX_SEQUENCE; LETHE_ERR_UNSUPPORTED when the trie would pass
 * 2^31 tokens; LETHE_ERR_NOMEM. Node indices already handed out stay valid.
 * seq must not point into the trie itself (a lethe_guard_trie_sequence
 * result): copy it first, as the trie's storage may move. */
lethe_status lethe_guard_trie_add(lethe_guard_trie_t *t, const uint32_t *seq, size_t n,
                                  uint32_t id);

/* Remove every sequence of `id`; returns how many were removed. When it is
 * not 0 the trie is rebuilt in place and every cursor held becomes invalid. */
size_t lethe_guard_trie_remove(lethe_guard_trie_t *t, uint32_t id);

/* How many (sequence, id) pairs the trie holds. */
size_t lethe_guard_trie_count(const lethe_guard_trie_t *t);

/* Sequence number i (< count, in the order added, removals closing gaps):
 * its tokens (owned by the trie, valid until the next add or remove), *n and
 * *id. */
const uint32_t *lethe_guard_trie_sequence(const lethe_guard_trie_t *t, size_t i, size_t *n,
                                          uint32_t *id);

/* Advance cursors cur[0..n_cur) and a fresh cursor at the root by `token`.
 * The cursors that can still grow are written to next[], which needs room
 * for n_cur + 1 (next may be cur itself); their number is returned.
 * *n_ended (may be NULL) gets how many cursors reached the end of a stored
 * sequence, and *ended_id (may be NULL; left alone when none ended) the
 * smallest id among those sequences. Start a text with n_cur = 0. A cursor
 * that is not a node of the trie is a broken invariant (assertion). */
size_t lethe_guard_trie_advance(const lethe_guard_trie_t *t, const uint32_t *cur, size_t n_cur,
                                uint32_t token, uint32_t *next, size_t *n_ended,
                                uint32_t *ended_id);

/* ---- serialisation -------------------------------------------------------- */

/* Write the automaton's patterns and ids (not its tables) to *buf (caller
 * frees with free()), *len bytes, little-endian:
 *   "LGAC", u32 version, u32 count, count x (u32 id, u32 len, len bytes). */
lethe_status lethe_guard_ac_save(const lethe_guard_ac_t *ac, unsigned char **buf, size_t *len);

/* Read such a buffer into a new automaton *out (built before it is
 * returned). Any malformed buffer (wrong magic or version, counts beyond the
 * buffer, a pattern that is empty, not normalised or repeated, bytes left
 * over) is LETHE_ERR_FORMAT with *out NULL; LETHE_ERR_NOMEM. */
lethe_status lethe_guard_ac_load(const void *buf, size_t len, lethe_guard_ac_t **out);

/* The same for the trie:
 *   "LGTR", u32 version, u32 count, count x (u32 id, u32 n, n x u32 token). */
lethe_status lethe_guard_trie_save(const lethe_guard_trie_t *t, unsigned char **buf, size_t *len);
lethe_status lethe_guard_trie_load(const void *buf, size_t len, lethe_guard_trie_t **out);

LETHE_API_END
#endif
