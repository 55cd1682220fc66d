/* lethe quantize: a GPT run's weights rounded to 8 or 4 bits with per-group
 * scales, written as a new run (lethe_gpt_quantize_run). */
#include <getopt.h>
#include <stdio.h>

#include <cjson/cJSON.h>

#include "cli.h"
#include "lethe/gpt_quant.h"

#define VERB "quantize"

static void print_usage(FILE *out)
{
    fprintf(out,
            "Usage: lethe quantize --run RUN --bits 8|4 [--group G] --out RUN2 [options]\n\n"
            "Round a GPT run's weight matrices (the token embedding, which is also the\n"
            "output head, and every block's four projections) to the nearest of 2^bits\n"
            "levels, with one scale per G consecutive inputs of each output\n"
            "(max |w| / 127 for 8 bits, / 7 for 4 bits). The position embedding, biases\n"
            "and LayerNorms stay in F32. RUN2 is a run every verb loads: they read the\n"
            "weights back as code x scale, and decoding (generate, serve, the suites'\n"
            "answers) reads the codes directly, a quarter or an eighth of the bytes\n"
            "per token.\n\n"
            "Options:\n"
            "  --run RUN     a lethe GPT run or a Hugging Face GPT-2 directory (required)\n"
            "  --bits N      8 or 4 (required)\n"
            "  --group G     inputs per scale: a multiple of 32 dividing the model's width\n"
            "                (default 64)\n"
            "  --out RUN2    the run directory to write (required; created; an existing\n"
            "                non-empty RUN2 is refused)\n"
            "  --force       write into an existing RUN2, replacing its files\n"
            "  --json        print a JSON summary\n"
            "  --quiet       no summary\n"
            "  -h, --help    show this help\n\n"
            "The summary: weights quantized, parameters kept in F32, the relative error\n"
            "sqrt(sum (w - w')^2 / sum w^2), the largest |w - w'|, and the bytes of the\n"
            "weights before and after.\n\n"
            "Exit codes: 0 ok, 1 failure, 2 usage error, 3 bad input (a run that is not\n"
            "a GPT run or is already quantized, a group that does not divide the width).\n");
}

int cmd_quantize(int argc, char **argv)
{
    enum { O_RUN = 1, O_BITS, O_GROUP, O_OUT, O_FORCE, O_JSON, O_QUIET };
    static const struct option longopts[] = {
        {"run", 1, 0, O_RUN},     {"bits", 1, 0, O_BITS}, {"group", 1, 0, O_GROUP},
        {"out", 1, 0, O_OUT},     {"force", 0, 0, O_FORCE}, {"json", 0, 0, O_JSON},
        {"quiet", 0, 0, O_QUIET}, {"help", 0, 0, 'h'},    {0, 0, 0, 0}};
    const char *run = NULL, *out = NULL;
    long bits = 0, group = 64;
    int force = 0, json = 0, quiet = 0, c;
    const cli_long_opt ints[] = {{O_BITS, &bits, 4, 8}, {O_GROUP, &group, 32, 1L << 20}};
    cli_getopt_begin();
    while ((c = getopt_long(argc, argv, "h", longopts, NULL)) != -1) {
        int r = cli_numeric_option(VERB, longopts, c, optarg, ints, 2, NULL, 0);
        if (r < 0)
            return -r;
        if (r)
            continue;
        switch (c) {
        case O_RUN: run = optarg; break;
        case O_OUT: out = optarg; break;
        case O_FORCE: force = 1; break;
        case O_JSON: json = 1; break;
        case O_QUIET: quiet = 1; break;
        case 'h': print_usage(stdout); return CLI_EXIT_OK;
        default: return cli_bad_option(VERB, argv, longopts);
        }
    }
    if (optind < argc)
        return cli_usage(VERB, "unexpected argument '%s'", argv[optind]);
    if (!run || !out || !bits)
        return cli_usage(VERB, "--run, --bits and --out are required");
    if (bits != 8 && bits != 4)
        return cli_usage(VERB, "--bits takes 8 or 4, not %ld", bits);
    lethe_quant_result r;
    lethe_status st = lethe_gpt_quantize_run(run, (int)bits, (int)group, out, force, &r);
    if (st != LETHE_OK)
        return cli_report_out(VERB, st);
    if (json) {
        cJSON *j = cJSON_CreateObject();
        cJSON_AddStringToObject(j, "run", run);
        cJSON_AddStringToObject(j, "out", out);
        cJSON_AddNumberToObject(j, "bits", (double)bits);
        cJSON_AddNumberToObject(j, "group", (double)group);
        cJSON_AddNumberToObject(j, "weights", (double)r.weights);
        cJSON_AddNumberToObject(j, "kept_f32", (double)r.kept);
        cJSON_AddNumberToObject(j, "rel_error", r.rel_error);
        cJSON_AddNumberToObject(j, "max_error", r.max_error);
        cJSON_AddNumberToObject(j, "bytes_before", (double)r.bytes_before);
        cJSON_AddNumberToObject(j, "bytes_after", (double)r.bytes_after);
        char *s = cJSON_PrintUnformatted(j);
        if (s)
            puts(s);
        cJSON_free(s);
        cJSON_Delete(j);
    } else if (!quiet) {
        printf("%s: %ld weights to %ld bits in groups of %ld (%ld parameters kept in F32)\n",
               out, r.weights, bits, group, r.kept);
        printf("relative error %.3g, largest error %.3g; weights %.1f MB -> %.1f MB\n",
               r.rel_error, r.max_error, r.bytes_before / 1e6, r.bytes_after / 1e6);
    }
    return CLI_EXIT_OK;
}
