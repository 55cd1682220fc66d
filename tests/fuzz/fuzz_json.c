/* libFuzzer harness: the JSON wrapper (parse, then every typed getter on
 * every member). Errors must come back as statuses, never as crashes. */
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include "lethe/json.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    cJSON *root;
    if (lethe_json_parse((const char *)data, size, "fuzz.json", &root) != LETHE_OK) {
        LETHE_ASSERT(root == NULL && lethe_error_detail()[0]);
        return 0;
    }
    const cJSON *it;
    cJSON_ArrayForEach(it, root) {
        if (!it->string)
            continue; /* array elements have no key */
        const char *key = it->string, *s, **v;
        double d;
        long long i;
        int b;
        size_t n;
        const cJSON *o;
        lethe_json_get_string(root, key, "fuzz.json", &s);
        lethe_json_get_number(root, key, "fuzz.json", &d);
        lethe_json_get_int(root, key, "fuzz.json", &i);
        lethe_json_get_bool(root, key, "fuzz.json", &b);
        lethe_json_get_object(root, key, "fuzz.json", &o);
        lethe_json_get_array(root, key, "fuzz.json", &o);
        if (lethe_json_get_strings(root, key, "fuzz.json", &v, &n) == LETHE_OK) {
            for (size_t k = 0; k < n; k++)
                LETHE_ASSERT(v[k] != NULL);
            free(v);
        }
        lethe_json_opt_int(root, key, "fuzz.json", 0, &i);
    }
    cJSON_Delete(root);
    return 0;
}
