/* libFuzzer harness: the guard file reader (lethe/guard_file.h). Each input
 * is loaded as a guard file, as it is and with its last 32 bytes replaced by
 * the right SHA-256 (so the checks behind the checksum are reached): a
 * format error with a message and no guard, or a guard that saves back to
 * the same bytes, loads again from them, scans and retrieves. Any
 * disagreement aborts; leaks are caught by the sanitizer. */
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include "lethe/guard_file.h"
#include "lethe/sha256.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

static void check_load(const uint8_t *data, size_t size)
{
    lethe_guard_t *g = (lethe_guard_t *)1;
    lethe_status st = lethe_guard_load_buf(data, size, "fuzz", &g);
    if (st != LETHE_OK) {
        LETHE_ASSERT((st == LETHE_ERR_FORMAT || st == LETHE_ERR_NOMEM) && g == NULL &&
                     lethe_error_detail()[0]);
        return;
    }
    unsigned char *buf;
    size_t len;
    LETHE_ASSERT(lethe_guard_save_buf(g, &buf, &len) == LETHE_OK);
    LETHE_ASSERT(len == size && !memcmp(buf, data, size));
    lethe_guard_t *again = NULL;
    LETHE_ASSERT(lethe_guard_load_buf(buf, len, "again", &again) == LETHE_OK);
    free(buf);
    LETHE_ASSERT(lethe_guard_target_count(again) == lethe_guard_target_count(g));
    size_t n_matches = 0, n2 = 0;
    const char *text = (const char *)data + 12;
    size_t tlen = size > 44 ? size - 44 : 0;
    LETHE_ASSERT(lethe_guard_ac_scan(lethe_guard_automaton(g), text, tlen, NULL, NULL,
                                     &n_matches) == LETHE_OK);
    LETHE_ASSERT(lethe_guard_ac_scan(lethe_guard_automaton(again), text, tlen, NULL, NULL,
                                     &n2) == LETHE_OK);
    LETHE_ASSERT(n_matches == n2);
    size_t idx[4], idx2[4], k = 0, k2 = 0;
    float sc[4], sc2[4];
    LETHE_ASSERT(lethe_guard_retrieve(g, text, tlen, 4, idx, sc, &k) == LETHE_OK);
    LETHE_ASSERT(lethe_guard_retrieve(again, text, tlen, 4, idx2, sc2, &k2) == LETHE_OK);
    LETHE_ASSERT(k == k2 && !memcmp(idx, idx2, k * sizeof *idx) &&
                 !memcmp(sc, sc2, k * sizeof *sc));
    for (size_t i = 0; i < k; i++)
        LETHE_ASSERT(idx[i] < lethe_guard_answer_count(g) && sc[i] >= -1.001f &&
                     sc[i] <= 1.001f && (i == 0 || sc[i] <= sc[i - 1]));
    lethe_guard_free(again);
    lethe_guard_free(g);
}

static void check_load_fixed(const uint8_t *data, size_t size)
{
    if (size < 32)
        return;
    uint8_t *copy = malloc(size);
    LETHE_ASSERT(copy);
    memcpy(copy, data, size);
    lethe_sha256 s;
    char hex[65];
    lethe_sha256_init(&s);
    lethe_sha256_update(&s, copy, size - 32);
    lethe_sha256_final(&s, hex);
    for (int i = 0; i < 32; i++) {
        int hi = hex[2 * i], lo = hex[2 * i + 1];
        hi = hi <= '9' ? hi - '0' : hi - 'a' + 10;
        lo = lo <= '9' ? lo - '0' : lo - 'a' + 10;
        copy[size - 32 + (size_t)i] = (uint8_t)(hi << 4 | lo);
    }
    check_load(copy, size);
    free(copy);
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    check_load(data, size);
    check_load_fixed(data, size);
    return 0;
}
