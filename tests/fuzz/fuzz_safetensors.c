/* libFuzzer harness for the safetensors reader: parse any bytes; when they
 * parse, convert every convertible tensor to floats and look each one up. */
#include <stdint.h>
#include <stdlib.h>

#include "lethe/safetensors.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    lethe_safetensors *st;
    if (lethe_safetensors_parse(data, size, "fuzz.safetensors", &st) != LETHE_OK)
        return 0;
    for (size_t i = 0; i < st->n_tensors; i++) {
        const lethe_st_tensor *t = &st->tensors[i];
        if (lethe_safetensors_find(st, t->name) != t)
            abort(); /* names are unique, so lookup finds this very tensor */
        if (t->data + (t->end - t->begin) > data + size || t->data < data)
            abort();
        float *x = malloc((t->numel ? t->numel : 1) * sizeof *x);
        if (!x)
            continue;
        lethe_status s = lethe_safetensors_to_f32(st, t, x);
        if ((s == LETHE_OK) != lethe_dtype_to_f32_supported(t->dtype))
            abort();
        free(x);
    }
    for (size_t i = 0; i < st->n_meta; i++)
        if (!lethe_safetensors_meta(st, st->meta[i].key))
            abort();
    lethe_safetensors_free(st);
    return 0;
}
