/* libFuzzer harness: JSON Lines, with the TOFU field getters on each row. */
#include <stdint.h>
#include <stdlib.h>

#include "lethe/loaders.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    lethe_jsonl j;
    if (lethe_jsonl_parse((const char *)data, size, "fuzz.jsonl", &j) != LETHE_OK) {
        LETHE_ASSERT(j.n == 0 && j.rows == NULL && lethe_error_detail()[0]);
        return 0;
    }
    char where[64];
    for (size_t i = 0; i < j.n; i++) {
        LETHE_ASSERT(cJSON_IsObject(j.rows[i]) && j.lines[i] >= 1);
        LETHE_ASSERT(i == 0 || j.lines[i] > j.lines[i - 1]);
        const char *s, **v;
        size_t n;
        lethe_jsonl_where(&j, i, where, sizeof where);
        lethe_json_get_string(j.rows[i], "question", where, &s);
        lethe_json_opt_string(j.rows[i], "answer", where, "", &s);
        if (lethe_json_get_strings(j.rows[i], "perturbed_answer", where, &v, &n) == LETHE_OK)
            free(v);
    }
    lethe_jsonl_free(&j);
    return 0;
}
