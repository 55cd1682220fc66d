/* lethe inspect: a safetensors file's tensors (with the sum and mean of
 * each), its parameter count and its metadata, as text or JSON. */
#include <getopt.h>
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <cjson/cJSON.h>

#include "cli.h"
#include "lethe/safetensors.h"

static void print_usage(FILE *out)
{
    fprintf(out,
            "Usage: lethe inspect FILE.safetensors [--json] [--quiet]\n\n"
            "Show every tensor of a safetensors file, in data order: its name, dtype,\n"
            "shape, and the sum and mean of its values (accumulated in double precision\n"
            "after conversion to F32; \"-\" for dtypes lethe cannot convert, and a mean\n"
            "of \"-\" for an empty tensor), then the total parameter count and the\n"
            "metadata. The whole file is validated first. Text shows 10 significant\n"
            "digits; JSON numbers round-trip exactly.\n\n"
            "Options:\n"
            "  --json      print one JSON object: {\"file\", \"parameters\", \"tensors\":\n"
            "              [{\"name\", \"dtype\", \"shape\", \"sum\", \"mean\"}], \"metadata\"};\n"
            "              sums and means that cannot be computed are null\n"
            "  --quiet     accepted as by every verb (only errors go to stderr)\n"
            "  -h, --help  show this help\n\n"
            "Exit codes: 0 ok, 1 failure, 2 usage error, 3 missing or malformed file.\n");
}

/* Sum of t's values in double; false when its dtype cannot be converted. */
static int tensor_sum(const lethe_safetensors *st, const lethe_st_tensor *t, double *sum,
                      lethe_status *err)
{
    *sum = 0;
    *err = LETHE_OK;
    if (!lethe_dtype_to_f32_supported(t->dtype))
        return 0;
    if (t->numel == 0)
        return 1;
    float *x = malloc(t->numel * sizeof *x);
    if (!x) {
        *err = lethe_fail(LETHE_ERR_NOMEM, "%s: out of memory for a tensor of %zu values",
                          st->name, t->numel);
        return 0;
    }
    lethe_status s = lethe_safetensors_to_f32(st, t, x);
    double acc = 0;
    for (size_t i = 0; s == LETHE_OK && i < t->numel; i++)
        acc += x[i];
    free(x);
    *sum = acc;
    return s == LETHE_OK;
}

/* Print s with control bytes escaped, so each entry stays on one line. */
static void put_clean(const char *s, int width)
{
    int n = 0;
    for (; *s; s++, n++) {
        unsigned char c = (unsigned char)*s;
        if (c < 0x20 || c == 0x7f) {
            printf("\\x%02x", c);
            n += 3;
        } else {
            putchar(c);
        }
    }
    for (; n < width; n++)
        putchar(' ');
}

static void shape_text(char *buf, size_t cap, const lethe_st_tensor *t)
{
    size_t o = (size_t)snprintf(buf, cap, "[");
    for (size_t d = 0; d < t->rank && o < cap; d++)
        o += (size_t)snprintf(buf + o, cap - o, d ? ", %zu" : "%zu", t->shape[d]);
    if (o < cap)
        snprintf(buf + o, cap - o, "]");
}

static int print_text(const lethe_safetensors *st, size_t params)
{
    int wn = 4, ws = 5;
    char shape[256];
    for (size_t i = 0; i < st->n_tensors; i++) {
        int len = (int)strlen(st->tensors[i].name);
        wn = len > wn ? len : wn;
        shape_text(shape, sizeof shape, &st->tensors[i]);
        len = (int)strlen(shape);
        ws = len > ws ? len : ws;
    }
    printf("file: %s\ntensors: %zu\nparameters: %zu\n\n", st->name, st->n_tensors, params);
    printf("%-*s  %-7s  %-*s  %-16s  %s\n", wn, "name", "dtype", ws, "shape", "sum", "mean");
    for (size_t i = 0; i < st->n_tensors; i++) {
        const lethe_st_tensor *t = &st->tensors[i];
        double sum;
        lethe_status err;
        int ok = tensor_sum(st, t, &sum, &err);
        if (err != LETHE_OK)
            return cli_report("inspect", err);
        put_clean(t->name, wn);
        shape_text(shape, sizeof shape, t);
        printf("  %-7s  %-*s  ", lethe_dtype_name(t->dtype), ws, shape);
        if (!ok)
            printf("%-16s  -\n", "-");
        else if (t->numel == 0)
            printf("%-16.10g  -\n", sum);
        else
            printf("%-16.10g  %.10g\n", sum, sum / (double)t->numel);
    }
    printf("\nmetadata: %zu\n", st->n_meta);
    for (size_t i = 0; i < st->n_meta; i++) {
        printf("  ");
        put_clean(st->meta[i].key, 0);
        printf(": ");
        put_clean(st->meta[i].value, 0);
        putchar('\n');
    }
    return CLI_EXIT_OK;
}

static int print_json(const lethe_safetensors *st, size_t params)
{
    cJSON *root = cJSON_CreateObject(), *ts = cJSON_CreateArray(), *meta = cJSON_CreateObject();
    int ok = root && ts && meta;
    if (ok) {
        cJSON_AddStringToObject(root, "file", st->name);
        cJSON_AddNumberToObject(root, "parameters", (double)params);
        cJSON_AddItemToObject(root, "tensors", ts);
        cJSON_AddItemToObject(root, "metadata", meta);
    } else {
        cJSON_Delete(ts);
        cJSON_Delete(meta);
    }
    for (size_t i = 0; ok && i < st->n_tensors; i++) {
        const lethe_st_tensor *t = &st->tensors[i];
        double sum;
        lethe_status err;
        int have = tensor_sum(st, t, &sum, &err);
        if (err != LETHE_OK) {
            cJSON_Delete(root);
            return cli_report("inspect", err);
        }
        cJSON *e = cJSON_CreateObject(), *shape = cJSON_CreateArray();
        ok = e && shape;
        for (size_t d = 0; ok && d < t->rank; d++)
            ok = cJSON_AddItemToArray(shape, cJSON_CreateNumber((double)t->shape[d]));
        if (!ok) {
            cJSON_Delete(e);
            cJSON_Delete(shape);
            break;
        }
        cJSON_AddItemToArray(ts, e);
        cJSON_AddStringToObject(e, "name", t->name);
        cJSON_AddStringToObject(e, "dtype", lethe_dtype_name(t->dtype));
        cJSON_AddItemToObject(e, "shape", shape);
        /* cJSON writes non-finite numbers as null. */
        if (have)
            cJSON_AddNumberToObject(e, "sum", sum);
        else
            cJSON_AddNullToObject(e, "sum");
        if (have && t->numel)
            cJSON_AddNumberToObject(e, "mean", sum / (double)t->numel);
        else
            cJSON_AddNullToObject(e, "mean");
    }
    for (size_t i = 0; ok && i < st->n_meta; i++)
        ok = cJSON_AddStringToObject(meta, st->meta[i].key, st->meta[i].value) != NULL;
    char *text = ok ? cJSON_PrintUnformatted(root) : NULL;
    cJSON_Delete(root);
    if (!text) {
        fprintf(stderr, "lethe inspect: out of memory\n");
        return CLI_EXIT_FAILURE;
    }
    puts(text);
    free(text);
    return CLI_EXIT_OK;
}

int cmd_inspect(int argc, char **argv)
{
    static const struct option opts[] = {
        {"json", no_argument, NULL, 'j'}, {"quiet", no_argument, NULL, 'q'},
        {"help", no_argument, NULL, 'h'}, {NULL, 0, NULL, 0}};
    int json = 0, c;
    cli_getopt_begin();
    while ((c = getopt_long(argc, argv, "h", opts, NULL)) != -1) {
        if (c == 'j') {
            json = 1;
        } else if (c == 'q') {
            /* inspect writes nothing but errors to stderr */
        } else if (c == 'h') {
            print_usage(stdout);
            return CLI_EXIT_OK;
        } else {
            return cli_bad_option("inspect", argv, opts);
        }
    }
    if (optind >= argc)
        return cli_usage("inspect", "missing the FILE.safetensors to inspect");
    if (optind + 1 < argc)
        return cli_usage("inspect", "unexpected argument '%s'", argv[optind + 1]);

    lethe_safetensors *st;
    lethe_status s = lethe_safetensors_open(argv[optind], &st);
    if (s != LETHE_OK)
        return cli_report("inspect", s);
    size_t params = 0;
    for (size_t i = 0; i < st->n_tensors; i++)
        params += st->tensors[i].numel;
    int rc = json ? print_json(st, params) : print_text(st, params);
    lethe_safetensors_free(st);
    return rc;
}
