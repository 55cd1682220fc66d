/* libFuzzer harness: CSV. The first byte picks the options (separator,
 * header, skipped lines, row limit); the rest is the text. A parsed table
 * is checked for consistency and converted to numbers both ways. */
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include "lethe/loaders.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    if (size < 1)
        return 0;
    static const char delims[4] = {',', ';', '\t', ' '};
    lethe_csv_opts o = {.delim = delims[data[0] & 3],
                        .header = (data[0] >> 2) & 1,
                        .skip_lines = (data[0] >> 3) & 3,
                        .max_rows = (data[0] >> 5) & 7};
    lethe_csv c;
    if (lethe_csv_parse((const char *)data + 1, size - 1, "fuzz.csv", &o, &c) != LETHE_OK) {
        LETHE_ASSERT(c.cells == NULL && lethe_error_detail()[0]);
        return 0;
    }
    LETHE_ASSERT(o.max_rows == 0 || c.n_rows <= o.max_rows);
    LETHE_ASSERT(c.n_rows == 0 || c.n_cols >= 1);
    size_t total = 0;
    for (size_t r = 0; r < c.n_rows; r++) {
        LETHE_ASSERT(r == 0 || c.lines[r] > c.lines[r - 1]);
        for (size_t k = 0; k < c.n_cols; k++)
            total += strlen(lethe_csv_cell(&c, r, k));
    }
    LETHE_ASSERT(total <= size);
    if (c.header && c.n_cols) {
        size_t col;
        LETHE_ASSERT(lethe_csv_column(&c, c.header[0], &col) == LETHE_OK && col == 0);
        lethe_csv_column(&c, "no such column", &col);
    }
    if (c.n_rows && c.n_cols) {
        double *d = malloc(c.n_rows * c.n_cols * sizeof *d);
        float *f = malloc(c.n_rows * c.n_cols * sizeof *f);
        if (d && f) {
            lethe_status sd = lethe_csv_to_double(&c, 0, c.n_cols, d);
            lethe_status sf = lethe_csv_to_float(&c, 0, c.n_cols, f);
            LETHE_ASSERT(sd != LETHE_OK || sf == LETHE_OK || sf == LETHE_ERR_FORMAT);
            LETHE_ASSERT(sf != LETHE_OK || sd == LETHE_OK);
        }
        free(d);
        free(f);
    }
    lethe_csv_free(&c);
    return 0;
}
