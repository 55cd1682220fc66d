/* libFuzzer harness: IDX, inflating first when the input is gzip data, as
 * lethe_idx_read does for the .gz files Debian ships. */
#include <stdint.h>
#include <stdlib.h>

#include "lethe/fileio.h"
#include "lethe/loaders.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    unsigned char *raw = NULL;
    const unsigned char *buf = data;
    size_t len = size;
    if (size >= 2 && data[0] == 0x1f && data[1] == 0x8b) {
        if (lethe_gunzip(data, size, (size_t)64 << 20, "fuzz.idx.gz", &raw, &len) != LETHE_OK)
            return 0;
        buf = raw;
    }
    lethe_idx x;
    if (lethe_idx_parse(buf, len, "fuzz.idx", &x) == LETHE_OK) {
        LETHE_ASSERT(x.ndim >= 1 && x.ndim <= LETHE_IDX_MAX_DIMS);
        LETHE_ASSERT(4 + 4 * (size_t)x.ndim + x.count * x.elem_size == len);
        float *f = malloc(x.count ? x.count * sizeof *f : 1);
        if (f)
            lethe_idx_to_float(&x, 1.0f / 255, f);
        free(f);
        lethe_idx_free(&x);
    } else {
        LETHE_ASSERT(x.data == NULL && lethe_error_detail()[0]);
    }
    free(raw);
    return 0;
}
