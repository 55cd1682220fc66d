/* lethe tokenizer: train a byte-level BPE tokenizer, encode text into ids and
 * decode ids into bytes, with lethe's tokenizer.json or GPT-2's files. */
#include <errno.h>
#include <getopt.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <cjson/cJSON.h>

#include "cli.h"
#include "lethe/fileio.h"
#include "lethe/loaders.h"
#include "lethe/rundir.h"
#include "lethe/tokenizer.h"

static void print_usage(FILE *out)
{
    fputs("Usage: lethe tokenizer SUBCOMMAND [options]\n\n"
          "Byte-level BPE tokenizers as GPT-2 defines them: GPT-2's word-splitting\n"
          "pattern, its byte-to-unicode alphabet, merges applied by rank. Any bytes\n"
          "encode and decode back exactly. Reads Hugging Face's tokenizer.json (BPE)\n"
          "and GPT-2's vocab.json + merges.txt (gzip-compressed too); writes\n"
          "tokenizer.json. Encoding with GPT-2's files gives GPT-2's ids.\n\n"
          "Subcommands:\n"
          "  train --corpus FILE... --vocab N --out tokenizer.json\n"
          "                       learn merges from text files\n"
          "  encode TOKENIZER [--text STRING | --file FILE | --jsonl FILE]\n"
          "                       print the ids of a text, space-separated\n"
          "  decode TOKENIZER [--ids \"1 2 3\"]\n"
          "                       write the bytes of ids (from --ids or stdin)\n\n"
          "TOKENIZER is --tokenizer tokenizer.json, or --vocab vocab.json --merges merges.txt.\n"
          "Each subcommand takes --help.\n"
          "Exit codes: 0 ok, 1 failure, 2 usage error, 3 bad input (one line naming the\n"
          "file and the problem).\n",
          out);
}

struct opts {
    const char *tokenizer, *vocab, *merges, *text, *jsonl, *ids, *out;
    const char **corpus, **files;
    size_t n_corpus, n_files;
    const char **special;
    size_t n_special;
    long vocab_size, min_frequency;
    int json, force, quiet;
};

#define OPT_HELP {"help", no_argument, NULL, 'h'}
#define OPT_JSON {"json", no_argument, NULL, 'j'}
#define OPT_QUIET {"quiet", no_argument, NULL, 'q'}
#define OPT_END {NULL, 0, NULL, 0}

static int push_arg(const char ***v, size_t *n, const char *s)
{
    const char **p = realloc(*v, (*n + 1) * sizeof *p);
    if (!p)
        return -1;
    p[(*n)++] = s;
    *v = p;
    return 0;
}

/* Parse argv with `table`. Returns -1 to go on, else an exit code. */
static int parse(int argc, char **argv, const char *verb, const char *usage,
                 const struct option *table, int train, struct opts *o)
{
    /* train's --vocab is the vocabulary size; elsewhere GPT-2's vocab.json */
    const cli_long_opt ints[] = {{train ? 'V' : -1, &o->vocab_size, 1, 1L << 31},
                                 {'m', &o->min_frequency, 0, 1L << 62}};
    cli_getopt_begin();
    int c;
    while ((c = getopt_long(argc, argv, "h", table, NULL)) != -1) {
        int done = cli_numeric_option(verb, table, c, optarg, ints, 2, NULL, 0);
        if (done < 0)
            return -done;
        if (done)
            continue;
        switch (c) {
        case 'h': fputs(usage, stdout); return CLI_EXIT_OK;
        case 'j': o->json = 1; break;
        case 'F': o->force = 1; break;
        case 'q': o->quiet = 1; break;
        case 'T': o->tokenizer = optarg; break;
        case 'M': o->merges = optarg; break;
        case 't': o->text = optarg; break;
        case 'l': o->jsonl = optarg; break;
        case 'i': o->ids = optarg; break;
        case 'o': o->out = optarg; break;
        case 'V': o->vocab = optarg; break;
        case 'c':
        case 'f':
        case 's':
            if (c == 'c'   ? push_arg(&o->corpus, &o->n_corpus, optarg)
                : c == 'f' ? push_arg(&o->files, &o->n_files, optarg)
                           : push_arg(&o->special, &o->n_special, optarg)) {
                fprintf(stderr, "lethe %s: out of memory\n", verb);
                return CLI_EXIT_FAILURE;
            }
            break;
        default: return cli_bad_option(verb, argv, table);
        }
    }
    return -1;
}

static void opts_free(struct opts *o)
{
    free(o->corpus);
    free(o->files);
    free(o->special);
}

/* Load the tokenizer named by the options; a usage error returns -2 in *rc. */
static lethe_status load(const char *verb, const struct opts *o, lethe_tokenizer_t **t, int *rc)
{
    *t = NULL;
    *rc = -1;
    if (o->tokenizer && (o->vocab || o->merges)) {
        *rc = cli_usage(verb, "give --tokenizer, or --vocab and --merges, not both");
        return LETHE_ERR_INVALID;
    }
    if (o->tokenizer)
        return lethe_tokenizer_load_json(o->tokenizer, t);
    if (!o->vocab || !o->merges) {
        *rc = cli_usage(verb, "missing the tokenizer: --tokenizer FILE, or --vocab FILE and "
                              "--merges FILE");
        return LETHE_ERR_INVALID;
    }
    return lethe_tokenizer_load_gpt2(o->vocab, o->merges, t);
}

#define TOKENIZER_OPTS                                                                          \
    {"tokenizer", required_argument, NULL, 'T'}, {"vocab", required_argument, NULL, 'V'},       \
    {                                                                                           \
        "merges", required_argument, NULL, 'M'                                                  \
    }

#define TOKENIZER_HELP                                                                          \
    "  --tokenizer FILE     a tokenizer.json (Hugging Face's BPE layout, as lethe writes)\n"  \
    "  --vocab FILE         GPT-2's vocab.json (with --merges)\n"                              \
    "  --merges FILE        GPT-2's merges.txt (with --vocab)\n"

/* ------------------------------------------------------------------ train */

static int tok_train(int argc, char **argv)
{
    static const struct option table[] = {{"corpus", required_argument, NULL, 'c'},
                                          {"vocab", required_argument, NULL, 'V'},
                                          {"out", required_argument, NULL, 'o'},
                                          {"special", required_argument, NULL, 's'},
                                          {"min-frequency", required_argument, NULL, 'm'},
                                          {"force", no_argument, NULL, 'F'},
                                          OPT_QUIET, OPT_JSON, OPT_HELP, OPT_END};
    const char *usage =
        "Usage: lethe tokenizer train --corpus FILE... --vocab N --out tokenizer.json\n"
        "                             [--special TOKEN]... [--min-frequency N] [--force]\n"
        "                             [--quiet] [--json]\n\n"
        "Learn a byte-level BPE tokenizer from text files (each file read as raw bytes;\n"
        "more files may follow --corpus). The vocabulary starts as the 256 bytes\n"
        "(id = byte value); each text is split into words with GPT-2's pattern and the\n"
        "words are counted; then the most frequent adjacent pair of tokens (ties: the\n"
        "smaller first id, then the smaller second id) becomes a new token, again and\n"
        "again, until the vocabulary has N tokens or no pair is left. Deterministic.\n\n"
        "  --corpus FILE        a training text (repeat it, or list more files)\n"
        "  --vocab N            vocabulary size, special tokens included (>= 256)\n"
        "  --out FILE           where to write tokenizer.json (atomically); an existing\n"
        "                       file, or a corpus file, is refused\n"
        "  --force              replace an existing FILE\n"
        "  --special TOKEN      a special token such as '<|endoftext|>', given the last\n"
        "                       ids (repeatable); never produced by encode\n"
        "  --min-frequency N    stop when the best pair occurs fewer than N times\n"
        "                       (default " CLI_STR(LETHE_TOKENIZER_MIN_FREQUENCY) ")\n"
        "  --json               print the summary as one JSON object\n"
        "  --quiet              no progress and no note on stderr when training stops\n"
        "                       early\n"
        "  -h, --help\n";
    struct opts o = {.min_frequency = LETHE_TOKENIZER_MIN_FREQUENCY};
    int rc = parse(argc, argv, "tokenizer train", usage, table, 1, &o);
    for (int i = optind; rc < 0 && i < argc; i++)
        if (push_arg(&o.corpus, &o.n_corpus, argv[i]))
            rc = CLI_EXIT_FAILURE;
    if (rc < 0 && !o.n_corpus)
        rc = cli_usage("tokenizer train", "missing --corpus FILE");
    else if (rc < 0 && !o.vocab_size)
        rc = cli_usage("tokenizer train", "missing --vocab N");
    else if (rc < 0 && !o.out)
        rc = cli_usage("tokenizer train", "missing --out FILE");
    if (rc >= 0) {
        opts_free(&o);
        return rc;
    }
    char **texts = calloc(o.n_corpus, sizeof *texts);
    size_t *lens = calloc(o.n_corpus, sizeof *lens), bytes = 0;
    lethe_status st = texts && lens ? LETHE_OK : lethe_fail(LETHE_ERR_NOMEM, "out of memory");
    if (st == LETHE_OK)
        st = lethe_outfile_check(o.out, o.force, o.corpus, o.n_corpus);
    for (size_t i = 0; st == LETHE_OK && i < o.n_corpus; i++) {
        st = lethe_file_read(o.corpus[i], (unsigned char **)&texts[i], &lens[i]);
        bytes += lens[i];
    }
    lethe_tokenizer_t *t = NULL;
    lethe_progress prog;
    lethe_progress_init(&prog, stderr, "tokenizer train", "bytes", 0, o.quiet);
    lethe_tokenizer_train_opts to = {(uint64_t)o.min_frequency, o.special, o.n_special, &prog};
    double t0 = lethe_now(), secs = 0;
    if (st == LETHE_OK)
        st = lethe_tokenizer_train((const char *const *)texts, lens, o.n_corpus,
                                   (size_t)o.vocab_size, &to, &t);
    secs = lethe_now() - t0;
    if (st == LETHE_OK && prog.last != prog.t0) /* a final line after shown progress */
        lethe_progress_finish(&prog);
    if (st == LETHE_OK)
        st = lethe_tokenizer_save_json(t, o.out);
    for (size_t i = 0; texts && i < o.n_corpus; i++)
        free(texts[i]);
    free(texts);
    free(lens);
    if (st != LETHE_OK) {
        lethe_tokenizer_free(t);
        opts_free(&o);
        return cli_report_out("tokenizer train", st);
    }
    size_t n_tok = lethe_tokenizer_n_tokens(t), n_merges = lethe_tokenizer_n_merges(t);
    double mbps = secs > 0 ? (double)bytes / 1e6 / secs : 0;
    if (o.json) {
        printf("{\"out\": ");
        cJSON *s = cJSON_CreateString(o.out);
        char *q = s ? cJSON_PrintUnformatted(s) : NULL;
        printf("%s, \"vocab_size\": %zu, \"merges\": %zu, \"special\": %zu, \"files\": %zu, "
               "\"bytes\": %zu, \"seconds\": %.3f, \"mb_per_s\": %.3f}\n",
               q ? q : "null", n_tok, n_merges, o.n_special, o.n_corpus, bytes, secs, mbps);
        free(q);
        cJSON_Delete(s);
    } else {
        printf("vocab_size  %zu\nmerges      %zu\nspecial     %zu\nfiles       %zu\n"
               "bytes       %zu\nseconds     %.3f\nMB/s        %.3f\nwrote       %s\n",
               n_tok, n_merges, o.n_special, o.n_corpus, bytes, secs, mbps, o.out);
        if (n_tok < (size_t)o.vocab_size && !o.quiet)
            fprintf(stderr,
                    "lethe tokenizer train: note: stopped at %zu tokens of %ld: no pair occurs "
                    "%ld times or more\n",
                    n_tok, o.vocab_size, o.min_frequency > 1 ? o.min_frequency : 1);
    }
    lethe_tokenizer_free(t);
    opts_free(&o);
    return CLI_EXIT_OK;
}

/* All of stdin, NUL-terminated; the caller frees *data. */
static lethe_status read_stdin(unsigned char **data, size_t *len)
{
    size_t cap = 0, n = 0;
    unsigned char *buf = NULL;
    for (;;) {
        if (n + 1 >= cap) {
            cap = cap ? cap * 2 : 65536;
            unsigned char *p = realloc(buf, cap);
            if (!p) {
                free(buf);
                *data = NULL;
                return lethe_fail(LETHE_ERR_NOMEM, "stdin: out of memory");
            }
            buf = p;
        }
        size_t got = fread(buf + n, 1, cap - n - 1, stdin);
        n += got;
        if (got == 0)
            break;
    }
    buf[n] = '\0';
    *data = buf;
    *len = n;
    if (ferror(stdin))
        return lethe_fail(LETHE_ERR_IO, "stdin: read failed");
    return LETHE_OK;
}

/* ----------------------------------------------------------------- encode */

static void print_ids(const uint32_t *ids, size_t n, int json)
{
    if (json)
        putchar('[');
    for (size_t i = 0; i < n; i++)
        printf(json ? (i ? ", %u" : "%u") : (i ? " %u" : "%u"), ids[i]);
    puts(json ? "]" : "");
}

static lethe_status encode_print(const lethe_tokenizer_t *t, const void *text, size_t len,
                                 int json)
{
    uint32_t *ids;
    size_t n;
    lethe_status st = lethe_tokenizer_encode(t, text, len, &ids, &n);
    if (st == LETHE_OK)
        print_ids(ids, n, json);
    free(ids);
    return st;
}

static lethe_status encode_jsonl(const lethe_tokenizer_t *t, const char *path, int json)
{
    lethe_jsonl j;
    lethe_status st = lethe_jsonl_read(path, &j);
    char where[512];
    for (size_t i = 0; st == LETHE_OK && i < j.n; i++) {
        const char *text;
        st = lethe_json_get_string(j.rows[i], "text", lethe_jsonl_where(&j, i, where, sizeof where),
                                   &text);
        if (st == LETHE_OK)
            st = encode_print(t, text, strlen(text), json);
    }
    lethe_jsonl_free(&j);
    return st;
}

static int tok_encode(int argc, char **argv)
{
    static const struct option table[] = {TOKENIZER_OPTS,
                                          {"text", required_argument, NULL, 't'},
                                          {"file", required_argument, NULL, 'f'},
                                          {"jsonl", required_argument, NULL, 'l'},
                                          OPT_JSON, OPT_QUIET, OPT_HELP, OPT_END};
    const char *usage =
        "Usage: lethe tokenizer encode TOKENIZER [--text STRING | --file FILE | --jsonl FILE]\n"
        "                              [--json] [--quiet]\n\n"
        "Print the token ids of a text, space-separated on one line. The text is\n"
        "--text, the bytes of --file (repeatable: one line per file), or stdin; with\n"
        "--jsonl, the \"text\" member of each line of a JSON Lines file, one line of\n"
        "ids per text. Any bytes are accepted (invalid UTF-8 and NUL too); special\n"
        "tokens are not matched in text.\n\n" TOKENIZER_HELP
        "  --text STRING        the text to encode\n"
        "  --file FILE          encode this file's bytes (repeatable)\n"
        "  --jsonl FILE         encode the \"text\" of each line\n"
        "  --json               print each list of ids as a JSON array\n"
        "  --quiet              accepted as by every verb (only errors go to stderr)\n"
        "  -h, --help\n";
    struct opts o = {0};
    int rc = parse(argc, argv, "tokenizer encode", usage, table, 0, &o);
    if (rc < 0 && optind < argc)
        rc = cli_usage("tokenizer encode", "unexpected argument '%s'", argv[optind]);
    if (rc < 0 && (!!o.text + !!o.n_files + !!o.jsonl) > 1)
        rc = cli_usage("tokenizer encode", "give one of --text, --file and --jsonl");
    lethe_tokenizer_t *t = NULL;
    lethe_status st = LETHE_OK;
    if (rc < 0)
        st = load("tokenizer encode", &o, &t, &rc);
    if (rc >= 0) {
        opts_free(&o);
        return rc;
    }
    if (st == LETHE_OK) {
        if (o.text)
            st = encode_print(t, o.text, strlen(o.text), o.json);
        else if (o.jsonl)
            st = encode_jsonl(t, o.jsonl, o.json);
        for (size_t i = 0; i < o.n_files && st == LETHE_OK; i++) {
            unsigned char *data;
            size_t len;
            if ((st = lethe_file_read(o.files[i], &data, &len)) == LETHE_OK)
                st = encode_print(t, data, len, o.json);
            free(data);
        }
        if (!o.text && !o.jsonl && !o.n_files) { /* stdin */
            unsigned char *data = NULL;
            size_t len = 0;
            if ((st = read_stdin(&data, &len)) == LETHE_OK)
                st = encode_print(t, data, len, o.json);
            free(data);
        }
    }
    lethe_tokenizer_free(t);
    opts_free(&o);
    if (st != LETHE_OK)
        return cli_report("tokenizer encode", st);
    return fflush(stdout) ? CLI_EXIT_FAILURE : CLI_EXIT_OK;
}

/* ----------------------------------------------------------------- decode */

/* Ids from text: decimal numbers separated by blanks, commas or brackets
 * (so "1 2 3" and "[1, 2, 3]" both work). `name` labels messages. */
static lethe_status parse_ids(const char *s, const char *name, uint32_t **ids, size_t *n)
{
    size_t cap = 0;
    *ids = NULL;
    *n = 0;
    for (;;) {
        while (*s && strchr(" \t\r\n,[]", *s))
            s++;
        if (!*s)
            return LETHE_OK;
        const char *start = s;
        unsigned long long v = 0;
        while (*s >= '0' && *s <= '9' && v < LETHE_TOKENIZER_MAX_ID)
            v = v * 10 + (unsigned long long)(*s++ - '0');
        if (s == start || (*s && !strchr(" \t\r\n,[]", *s)) || v >= LETHE_TOKENIZER_MAX_ID) {
            size_t k = strcspn(start, " \t\r\n,[]");
            free(*ids);
            *ids = NULL;
            return lethe_fail(LETHE_ERR_FORMAT, "%s: '%.*s' is not a token id", name,
                              (int)(k > 32 ? 32 : k), start);
        }
        if (*n == cap) {
            cap = cap ? cap * 2 : 256;
            uint32_t *p = realloc(*ids, cap * sizeof *p);
            if (!p) {
                free(*ids);
                *ids = NULL;
                return lethe_fail(LETHE_ERR_NOMEM, "%s: out of memory", name);
            }
            *ids = p;
        }
        (*ids)[(*n)++] = (uint32_t)v;
    }
}

static int tok_decode(int argc, char **argv)
{
    static const struct option table[] = {TOKENIZER_OPTS,
                                          {"ids", required_argument, NULL, 'i'},
                                          {"out", required_argument, NULL, 'o'},
                                          OPT_QUIET, OPT_HELP, OPT_END};
    const char *usage =
        "Usage: lethe tokenizer decode TOKENIZER [--ids \"1 2 3\"] [--out FILE] [--quiet]\n\n"
        "Write the bytes of token ids, concatenated, exactly (no newline added). The\n"
        "ids come from --ids or stdin: decimal numbers separated by blanks or commas\n"
        "(a JSON array works too).\n\n" TOKENIZER_HELP
        "  --ids IDS            the ids to decode\n"
        "  --out FILE           write the bytes to FILE (atomically) instead of stdout\n"
        "  --quiet              accepted as by every verb (only errors go to stderr)\n"
        "  -h, --help\n";
    struct opts o = {0};
    int rc = parse(argc, argv, "tokenizer decode", usage, table, 0, &o);
    if (rc < 0 && optind < argc)
        rc = cli_usage("tokenizer decode", "unexpected argument '%s'", argv[optind]);
    lethe_tokenizer_t *t = NULL;
    lethe_status st = LETHE_OK;
    if (rc < 0)
        st = load("tokenizer decode", &o, &t, &rc);
    if (rc >= 0) {
        opts_free(&o);
        return rc;
    }
    char *in = NULL;
    uint32_t *ids = NULL;
    unsigned char *bytes = NULL;
    size_t n = 0, len = 0;
    if (st == LETHE_OK && !o.ids) {
        size_t used;
        st = read_stdin((unsigned char **)&in, &used);
        if (st == LETHE_OK && memchr(in, '\0', used))
            st = lethe_fail(LETHE_ERR_FORMAT, "stdin: NUL byte among the ids");
    }
    if (st == LETHE_OK)
        st = parse_ids(o.ids ? o.ids : in, o.ids ? "--ids" : "stdin", &ids, &n);
    if (st == LETHE_OK)
        st = lethe_tokenizer_decode(t, ids, n, &bytes, &len);
    if (st == LETHE_OK) {
        if (o.out)
            st = lethe_file_write_atomic(o.out, bytes, len);
        else if (fwrite(bytes, 1, len, stdout) != len || fflush(stdout))
            st = lethe_fail(LETHE_ERR_FAILED, "stdout: write failed: %s", strerror(errno));
    }
    free(in);
    free(ids);
    free(bytes);
    lethe_tokenizer_free(t);
    opts_free(&o);
    return st == LETHE_OK ? CLI_EXIT_OK : cli_report("tokenizer decode", st);
}

int cmd_tokenizer(int argc, char **argv)
{
    static const struct {
        const char *name;
        int (*run)(int argc, char **argv);
    } subs[] = {{"train", tok_train}, {"encode", tok_encode}, {"decode", tok_decode}};
    if (argc < 2)
        return cli_usage("tokenizer", "missing a subcommand: train, encode or decode");
    const char *sub = argv[1];
    if (!strcmp(sub, "--help") || !strcmp(sub, "-h")) {
        print_usage(stdout);
        return CLI_EXIT_OK;
    }
    for (size_t i = 0; i < sizeof subs / sizeof subs[0]; i++)
        if (!strcmp(sub, subs[i].name))
            return subs[i].run(argc - 1, argv + 1);
    if (sub[0] == '-')
        return cli_usage("tokenizer", "unknown option '%s'", sub);
    return cli_usage("tokenizer", "unknown subcommand '%s' (train, encode or decode)", sub);
}
