/* libFuzzer harness: the tokenizer. Each input is
 *   - parsed as a tokenizer.json; when it loads, texts (the input itself
 *     among them) must encode and decode back exactly, and writing it out
 *     and reading it back must give the same vocabulary and merges;
 *   - split at its first NUL byte into GPT-2's vocab.json and merges.txt;
 *   - split into words (they must cover it exactly) and encoded with a
 *     small trained tokenizer, which must give the bytes back.
 * Errors must come back as statuses with a message, never as crashes. */
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include "lethe/tokenizer.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

static void round_trip(const lethe_tokenizer_t *t, const void *s, size_t len)
{
    uint32_t *ids;
    size_t n, blen;
    unsigned char *back;
    LETHE_ASSERT(lethe_tokenizer_encode(t, s, len, &ids, &n) == LETHE_OK);
    LETHE_ASSERT(lethe_tokenizer_decode(t, ids, n, &back, &blen) == LETHE_OK);
    LETHE_ASSERT(blen == len && (len == 0 || !memcmp(back, s, len)));
    free(ids);
    free(back);
}

static const lethe_tokenizer_t *trained(void)
{
    static lethe_tokenizer_t *t;
    if (!t) {
        const char *texts[] = {"It is a way I have of driving off the spleen, and regulating "
                               "the circulation. 1851 \xC3\xA9t\xC3\xA9 \xE6\x97\xA5\xE6\x9C\xAC "
                               "they're   \n\n\tit's \xFF\xFE"};
        size_t lens[] = {strlen(texts[0])};
        LETHE_ASSERT(lethe_tokenizer_train(texts, lens, 1, 320, NULL, &t) == LETHE_OK);
    }
    return t;
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    /* 1. tokenizer.json */
    lethe_tokenizer_t *t = NULL;
    if (lethe_tokenizer_parse_json((const char *)data, size, "fuzz.json", &t) == LETHE_OK) {
        static const char hello[] = "Hello world, it's 2024!\n\t\xC3\xA9\xFF";
        round_trip(t, hello, sizeof hello - 1);
        round_trip(t, data, size);
        char *text;
        lethe_tokenizer_t *u = NULL;
        if (lethe_tokenizer_to_json(t, &text) == LETHE_OK) {
            LETHE_ASSERT(lethe_tokenizer_parse_json(text, strlen(text), "again.json", &u) ==
                         LETHE_OK);
            LETHE_ASSERT(lethe_tokenizer_n_tokens(u) == lethe_tokenizer_n_tokens(t));
            LETHE_ASSERT(lethe_tokenizer_n_merges(u) == lethe_tokenizer_n_merges(t));
            free(text);
            lethe_tokenizer_free(u);
        }
        lethe_tokenizer_free(t);
    } else
        LETHE_ASSERT(t == NULL && lethe_error_detail()[0]);

    /* 2. vocab.json NUL merges.txt */
    const uint8_t *nul = memchr(data, 0, size);
    if (nul) {
        size_t nv = (size_t)(nul - data);
        if (lethe_tokenizer_parse_gpt2((const char *)data, nv, "vocab.json",
                                       (const char *)nul + 1, size - nv - 1, "merges.txt",
                                       &t) == LETHE_OK) {
            round_trip(t, data, size);
            lethe_tokenizer_free(t);
        } else
            LETHE_ASSERT(t == NULL && lethe_error_detail()[0]);
    }

    /* 3. splitting and encoding arbitrary bytes */
    size_t pos = 0;
    while (pos < size) {
        size_t end = lethe_tokenizer_split_next(data, size, pos);
        LETHE_ASSERT(end > pos && end <= size);
        pos = end;
    }
    round_trip(trained(), data, size);
    return 0;
}
