/* lethe score: per-token log-probabilities of sequences under the GPT model of a
 * lethe run or a Hugging Face GPT-2 directory. */
#include <getopt.h>
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include <cjson/cJSON.h>

#include "cli.h"
#include "lethe/fileio.h"
#include "lethe/gpt.h"
#include "lethe/gpt_generate.h"
#include "lethe/gpt_hf.h"
#include "lethe/progress.h"
#include "lethe/tokenizer.h"

#define VERB "score"

static void print_usage(FILE *out)
{
    fprintf(out,
            "Usage: lethe score --run DIR (--text FILE | --tokens FILE) [--json] [--quiet]\n\n"
            "Score sequences with the GPT model of DIR, a lethe run (model.safetensors,\n"
            "config.json, tokenizer.json) or a Hugging Face GPT-2 directory\n"
            "(model.safetensors, config.json, vocab.json + merges.txt or tokenizer.json):\n"
            "for every sequence, the log-probability of each token after the first given\n"
            "those before it, their mean negative log-likelihood, and at each position the\n"
            "mean and variance of log p under the model's own next-token distribution\n"
            "(Min-K%%++).\n\n"
            "Options:\n"
            "  --run DIR       a lethe run or Hugging Face GPT-2 directory\n"
            "  --text FILE     one sequence per line, encoded with DIR's tokenizer\n"
            "  --tokens FILE   one sequence per line as space-separated token ids (needs no\n"
            "                  tokenizer)\n"
            "  --json          print one JSON object per sequence (JSONL):\n"
            "                  {\"n\", \"mean_nll\", \"logprobs\", \"mu\", \"sigma2\"}\n"
            "  --quiet         no progress lines on stderr (many sequences show them)\n"
            "  -h, --help      show this help\n\n"
            "n is the number of tokens scored (the sequence's length minus 1); mean_nll is\n"
            "-sum(logprobs) / n (null when n is 0); logprobs[t] = log p(x[t+1] | x[..t]);\n"
            "mu[t] = sum_v p_v log p_v and sigma2[t] = sum_v p_v (log p_v)^2 - mu[t]^2 over\n"
            "the same distribution. A sequence may hold at most the model's n_positions\n"
            "tokens. Without --json one summary line per sequence, then the total.\n"
            "Exit codes: 0 ok, 1 failure, 2 usage error, 3 bad input (no checkpoint in DIR,\n"
            "a missing or misshapen tensor, a config.json that does not match the tensors,\n"
            "a missing file or tokenizer, ids outside the vocabulary, a sequence longer\n"
            "than the context).\n");
}

typedef struct seqs {
    int32_t **tok;
    int *len;
    int n, cap;
} seqs;

static void seqs_free(seqs *s)
{
    for (int i = 0; i < s->n; i++)
        free(s->tok[i]);
    free(s->tok), free(s->len);
}

static lethe_status seqs_push(seqs *s, int32_t *tok, int len)
{
    if (s->n == s->cap) {
        int cap = s->cap ? 2 * s->cap : 64;
        int32_t **t = realloc(s->tok, sizeof *t * (size_t)cap);
        if (t)
            s->tok = t;
        int *l = realloc(s->len, sizeof *l * (size_t)cap);
        if (l)
            s->len = l;
        if (!t || !l) {
            free(tok);
            return lethe_fail(LETHE_ERR_NOMEM, "out of memory");
        }
        s->cap = cap;
    }
    s->tok[s->n] = tok, s->len[s->n] = len, s->n++;
    return LETHE_OK;
}

/* One line of ids. */
static lethe_status parse_line_ids(const char *p, const char *end, const char *file, int line,
                                   int32_t **out, int *n)
{
    int32_t *ids = malloc(sizeof(int32_t) * ((size_t)(end - p) / 2 + 1));
    if (!ids)
        return lethe_fail(LETHE_ERR_NOMEM, "out of memory");
    int k = 0;
    while (p < end) {
        if (*p == ' ' || *p == '\t' || *p == ',' || *p == '\r') {
            p++;
            continue;
        }
        long v = 0;
        const char *q = p;
        while (q < end && *q >= '0' && *q <= '9' && v < (long)LETHE_TOKENIZER_MAX_ID)
            v = v * 10 + (*q++ - '0');
        if (q == p || v >= (long)LETHE_TOKENIZER_MAX_ID ||
            (q < end && !strchr(" \t,\r", *q))) {
            free(ids);
            return lethe_fail(LETHE_ERR_FORMAT, "%s:%d: '%.*s' is not a token id", file, line,
                              (int)(q - p + 1 < 20 ? q - p + 1 : 20), p);
        }
        ids[k++] = (int32_t)v;
        p = q;
    }
    *out = ids, *n = k;
    return LETHE_OK;
}

/* Every line of path as a sequence. */
static lethe_status read_seqs(const char *path, const lethe_tokenizer_t *tok, seqs *s)
{
    unsigned char *data;
    size_t len;
    lethe_status st = lethe_file_read(path, &data, &len);
    if (st)
        return st;
    const char *p = (const char *)data, *end = p + len;
    for (int line = 1; st == LETHE_OK && p < end; line++) {
        const char *nl = memchr(p, '\n', (size_t)(end - p));
        const char *e = nl ? nl : end;
        int32_t *ids = NULL;
        int n = 0;
        if (tok) {
            size_t m = (size_t)(e - p);
            if (m && p[m - 1] == '\r')
                m--;
            uint32_t *u = NULL;
            size_t nu = 0;
            st = lethe_tokenizer_encode(tok, p, m, &u, &nu);
            if (st == LETHE_OK) {
                ids = malloc(sizeof(int32_t) * (nu ? nu : 1));
                if (!ids)
                    st = lethe_fail(LETHE_ERR_NOMEM, "out of memory");
                for (size_t i = 0; ids && i < nu; i++)
                    ids[i] = (int32_t)u[i];
                n = (int)nu;
            }
            free(u);
        } else {
            st = parse_line_ids(p, e, path, line, &ids, &n);
        }
        if (st == LETHE_OK)
            st = seqs_push(s, ids, n);
        else
            free(ids);
        p = nl ? nl + 1 : end;
    }
    free(data);
    return st;
}

static lethe_status check_seqs(const seqs *s, const lethe_gpt *g, const char *path)
{
    for (int i = 0; i < s->n; i++) {
        if (s->len[i] > g->cfg.n_positions)
            return lethe_fail(LETHE_ERR_INVALID, "%s:%d: %d tokens, more than the model's "
                              "context of %d", path, i + 1, s->len[i], g->cfg.n_positions);
        for (int t = 0; t < s->len[i]; t++)
            if (s->tok[i][t] >= g->cfg.vocab_size)
                return lethe_fail(LETHE_ERR_INVALID, "%s:%d: token %d is outside the model's "
                                  "vocabulary of %d", path, i + 1, s->tok[i][t],
                                  g->cfg.vocab_size);
    }
    return LETHE_OK;
}

int cmd_score(int argc, char **argv)
{
    enum { O_RUN = 1, O_TEXT, O_TOKENS, O_JSON, O_QUIET };
    static const struct option longopts[] = {
        {"run", 1, 0, O_RUN},   {"text", 1, 0, O_TEXT},   {"tokens", 1, 0, O_TOKENS},
        {"json", 0, 0, O_JSON}, {"quiet", 0, 0, O_QUIET}, {"help", 0, 0, 'h'},
        {0, 0, 0, 0}};
    const char *run_dir = NULL, *text = NULL, *tokens = NULL;
    int json = 0, quiet = 0, c;
    cli_getopt_begin();
    while ((c = getopt_long(argc, argv, "h", longopts, NULL)) != -1) {
        switch (c) {
        case O_RUN: run_dir = optarg; break;
        case O_TEXT: text = optarg; break;
        case O_TOKENS: tokens = optarg; break;
        case O_JSON: json = 1; break;
        case O_QUIET: quiet = 1; break;
        case 'h': print_usage(stdout); return CLI_EXIT_OK;
        default: return cli_bad_option(VERB, argv, longopts);
        }
    }
    if (optind < argc)
        return cli_usage(VERB, "unexpected argument '%s'", argv[optind]);
    if (!run_dir)
        return cli_usage(VERB, "--run is required");
    if (!text == !tokens)
        return cli_usage(VERB, "give the sequences as either --text FILE or --tokens FILE");

    lethe_gpt_dir d;
    seqs s = {0};
    lethe_status st = lethe_gpt_dir_load(run_dir, text != NULL, &d);
    const lethe_gpt *g = d.model;
    lethe_gpt_ctx *x = st == LETHE_OK ? lethe_gpt_ctx_new() : NULL;
    lethe_tokenizer_t *tok = d.tok;
    if (st == LETHE_OK && text && !tok)
        st = lethe_fail(LETHE_ERR_NOT_FOUND, "%s has no tokenizer (tokenizer.json, or "
                        "vocab.json + merges.txt): give the sequences as --tokens FILE", run_dir);
    const char *file = text ? text : tokens;
    if (st == LETHE_OK)
        st = read_seqs(file, tok, &s);
    if (st == LETHE_OK)
        st = check_seqs(&s, g, file);
    int V = g ? g->cfg.vocab_size : 0;
    long total_n = 0;
    double total_nll = 0.0;
    int32_t *targets = g ? malloc(sizeof(int32_t) * (size_t)g->cfg.n_positions) : NULL;
    double *mu = g ? malloc(sizeof(double) * (size_t)g->cfg.n_positions) : NULL;
    double *s2 = g ? malloc(sizeof(double) * (size_t)g->cfg.n_positions) : NULL;
    if (st == LETHE_OK && (!targets || !mu || !s2 || !x))
        st = lethe_fail(LETHE_ERR_NOMEM, "out of memory");
    lethe_progress prog;
    /* a bar would break the result lines streaming to the same terminal */
    int same_tty = isatty(fileno(stdout)) && isatty(fileno(stderr));
    lethe_progress_init(&prog, stderr, VERB, "sequences", (uint64_t)s.n, quiet || same_tty);
    for (int i = 0; st == LETHE_OK && i < s.n; i++) {
        lethe_progress_update(&prog, (uint64_t)i);
        int T = s.len[i], n = T > 0 ? T - 1 : 0;
        double nll = 0.0;
        const float *lp = NULL;
        if (T > 0) {
            for (int t = 0; t < T; t++)
                targets[t] = t + 1 < T ? s.tok[i][t + 1] : -1;
            if ((st = lethe_gpt_ctx_forward(x, g, s.tok[i], targets, 1, T)))
                break;
            lp = x->logprobs;
            for (int t = 0; t < n; t++) {
                nll -= lp[t];
                lethe_gpt_logit_moments(x->logits + (long)t * V, V, &mu[t], &s2[t]);
            }
        }
        total_n += n;
        total_nll += nll;
        if (json) {
            cJSON *j = cJSON_CreateObject();
            cJSON_AddNumberToObject(j, "n", n);
            if (n)
                cJSON_AddNumberToObject(j, "mean_nll", nll / n);
            else
                cJSON_AddNullToObject(j, "mean_nll");
            cJSON_AddItemToObject(j, "logprobs",
                                  n ? cJSON_CreateFloatArray(lp, n) : cJSON_CreateArray());
            cJSON_AddItemToObject(j, "mu",
                                  n ? cJSON_CreateDoubleArray(mu, n) : cJSON_CreateArray());
            cJSON_AddItemToObject(j, "sigma2",
                                  n ? cJSON_CreateDoubleArray(s2, n) : cJSON_CreateArray());
            char *out = cJSON_PrintUnformatted(j);
            printf("%s\n", out ? out : "{}");
            free(out);
            cJSON_Delete(j);
        } else if (n) {
            printf("sequence %d: %d tokens scored, mean NLL %.6f (perplexity %.6g)\n", i + 1, n,
                   nll / n, exp(nll / n));
        } else {
            printf("sequence %d: nothing to score (fewer than 2 tokens)\n", i + 1);
        }
    }
    lethe_progress_update(&prog, (uint64_t)s.n);
    if (st == LETHE_OK && prog.last != prog.t0) /* a final line after shown progress */
        lethe_progress_finish(&prog);
    if (st == LETHE_OK && !json) {
        if (total_n)
            printf("all %d sequences: %ld tokens scored, mean NLL %.6f (perplexity %.6g)\n",
                   s.n, total_n, total_nll / (double)total_n, exp(total_nll / (double)total_n));
        else
            printf("all %d sequences: nothing to score\n", s.n);
    }
    free(targets), free(mu), free(s2);
    lethe_gpt_ctx_free(x);
    seqs_free(&s);
    lethe_gpt_dir_free(&d);
    return st == LETHE_OK ? CLI_EXIT_OK : cli_report(VERB, st);
}
