/* lethe generate: continue a prompt with the GPT model of a lethe run or a
 * Hugging Face GPT-2 directory. */
#include <getopt.h>
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <cjson/cJSON.h>

#include "cli.h"
#include "lethe/gpt.h"
#include "lethe/gpt_generate.h"
#include "lethe/gpt_hf.h"
#include "lethe/guard_alu.h"
#include "lethe/guard_serve.h"
#include "lethe/progress.h"
#include "lethe/tokenizer.h"

#define VERB "generate"
#define MAX_STOP 16
#define MAX_BEAM 64

static void print_usage(FILE *out)
{
    fprintf(out,
            "Usage: lethe generate --run DIR (--prompt TEXT | --tokens IDS) [options]\n"
            "       lethe generate --guard GUARD --mode alu (--endpoint URL | --run DIR)\n"
            "                      --prompt TEXT\n\n"
            "Continue a prompt with the GPT model of DIR, decoding with a key/value cache.\n"
            "DIR is a lethe run (model.safetensors, config.json, tokenizer.json) or a\n"
            "Hugging Face GPT-2 directory (model.safetensors, config.json, vocab.json +\n"
            "merges.txt or tokenizer.json). The prompt is encoded with DIR's tokenizer;\n"
            "without one, give it as token ids and ids are printed. Generation stops after\n"
            "--max-new tokens, after <|endoftext|> (when the tokenizer has it), when the\n"
            "text ends with a stop string, or at the model's context length.\n\n"
            "Options:\n"
            "  --run DIR          a lethe run or Hugging Face GPT-2 directory\n"
            "  --prompt TEXT      the prompt as text (needs DIR's tokenizer)\n"
            "  --tokens IDS       the prompt as token ids (\"464 3290 318\")\n"
            "  --max-new N        new tokens at most (default 32; with --mode alu, per agent\n"
            "                     reply, default 256)\n"
            "  --temperature X    0: greedy; > 0: sample from softmax(logits / X)\n"
            "                     (default 1)\n"
            "  --top-k K          sample among the K most likely tokens (default 0: all)\n"
            "  --top-p P          sample among the fewest most likely tokens whose\n"
            "                     probabilities sum to P, 0 < P <= 1 (default 1: all)\n"
            "  --beam W           beam search of width W (ignores temperature, top-k, top-p)\n"
            "  --length-norm      beam search: rank beams by mean log-prob per new token\n"
            "                     (default: by total log-prob)\n"
            "  --stop S           stop when the generated text ends with S (repeatable, at\n"
            "                     most %d; needs the tokenizer)\n"
            "  --seed N           sampling seed (default 0); the same seed gives the same text\n"
            "  --guard GUARD      answer behind the guard file GUARD (lethe guard fit), made\n"
            "                     for this model: a flagged prompt is decoded by --mode\n"
            "  --mode M           guard: GUARD's constrained beam search (width 7; --beam\n"
            "                     sets the width for unflagged prompts, default greedy);\n"
            "                     eco: decode with the prompt's entity embeddings corrupted\n"
            "  --eco-fn F         eco's corruption: noise_first (default), noise_random,\n"
            "                     noise_top, zero_top, flip_first, flip_top\n"
            "  --eco-k K          dimensions corrupted per position (0: all; default 0)\n"
            "  --eco-sigma X      noise strength (default 1)\n"
            "                     alu: ALU's agents over the chat endpoint --endpoint URL\n"
            "                     (OpenAI-compatible), or with --run, DIR's model in this\n"
            "                     process as their chat model; each reply has at most\n"
            "                     --max-new tokens: an answer, the guard's automaton as\n"
            "                     gate, 5 rewrites, ratings, a merge of the best 3 or a\n"
            "                     refusal, a final audit\n"
            "  --endpoint URL     alu's server (http://host:port); LETHE_API_KEY, when set,\n"
            "                     is sent as a bearer token\n"
            "  --endpoint-model M the \"model\" field of alu's requests (default \"default\")\n"
            "  --timeout S        alu: seconds per request (default 60)\n"
            "  --json             print {\"prompt_tokens\", \"tokens\", \"logprobs\", \"score\",\n"
            "                     \"stop\"} and \"text\" when there is a tokenizer; with --guard\n"
            "                     also \"flagged\", \"guard_score\", \"refused\", \"targets\"\n"
            "  --quiet            no progress lines on stderr (a long generation shows them)\n"
            "  -h, --help         show this help\n\n"
            "Without --json the generated text (or ids) is printed, without the prompt.\n"
            "Exit codes: 0 ok, 1 failure, 2 usage error, 3 bad input (no checkpoint in DIR,\n"
            "a missing or misshapen tensor, a config.json that does not match the tensors,\n"
            "no tokenizer, ids outside the vocabulary, a prompt longer than the context).\n",
            MAX_STOP);
}

/* Whitespace- or comma-separated ids into a new array. */
static lethe_status parse_ids(const char *s, const char *what, int32_t **out, int *n)
{
    size_t cap = strlen(s) / 2 + 1;
    int32_t *ids = malloc(sizeof(int32_t) * cap);
    if (!ids)
        return lethe_fail(LETHE_ERR_NOMEM, "out of memory");
    int k = 0;
    const char *p = s;
    for (;;) {
        while (*p == ' ' || *p == '\t' || *p == ',' || *p == '\n' || *p == '\r')
            p++;
        if (!*p)
            break;
        char *end;
        long v = strtol(p, &end, 10);
        if (end == p || v < 0 || v >= (long)LETHE_TOKENIZER_MAX_ID ||
            (*end && !strchr(" \t,\r\n", *end))) {
            free(ids);
            return lethe_fail(LETHE_ERR_INVALID, "%s: '%.20s' is not a token id", what, p);
        }
        ids[k++] = (int32_t)v;
        p = end;
    }
    *out = ids, *n = k;
    return LETHE_OK;
}

static void print_result(const lethe_gen_result *r, int n_prompt, const lethe_tokenizer_t *tok,
                         const unsigned char *text, size_t text_len, int json)
{
    if (json) {
        cJSON *j = cJSON_CreateObject();
        cJSON_AddNumberToObject(j, "prompt_tokens", n_prompt);
        int n = r->n;
        cJSON_AddItemToObject(j, "tokens", n ? cJSON_CreateIntArray((const int *)r->tokens, n)
                                             : cJSON_CreateArray());
        cJSON_AddItemToObject(j, "logprobs",
                              n ? cJSON_CreateFloatArray(r->logprobs, n) : cJSON_CreateArray());
        cJSON_AddNumberToObject(j, "score", r->score);
        cJSON_AddStringToObject(j, "stop", lethe_gen_stop_name(r->stop));
        if (tok)
            cJSON_AddStringToObject(j, "text", (const char *)text);
        char *s = cJSON_PrintUnformatted(j);
        printf("%s\n", s ? s : "{}");
        free(s);
        cJSON_Delete(j);
    } else if (tok) {
        fwrite(text, 1, text_len, stdout);
        putchar('\n');
    } else {
        for (int i = 0; i < r->n; i++)
            printf(i ? " %d" : "%d", r->tokens[i]);
        putchar('\n');
    }
}

/* The answer behind a guard: the session's path for one prompt. */
static lethe_status guarded(const lethe_gpt_dir *dir, const char *path, const char *mode,
                            const lethe_eco_cfg *eco, const char *prompt,
                            const lethe_gen_opts *o, int json)
{
    lethe_guard_serve_cfg c;
    lethe_guard_serve_defaults(&c);
    c.eco = *eco;
    lethe_status st = lethe_guard_mode_parse(mode, &c.mode);
    if (st != LETHE_OK)
        return st;
    if (o->n_stop || o->temperature != 1.0f || o->top_k || o->top_p != 1.0f || o->seed)
        return lethe_fail(LETHE_ERR_INVALID, "--guard decodes by beam search: no --stop, "
                          "--temperature, --top-k, --top-p or --seed");
    lethe_guard_t *gd = NULL;
    lethe_guard_serve_t *s = NULL;
    c.plain_beam = o->beam;
    c.decode.length_norm = o->length_norm;
    lethe_guard_serve_result r = {0};
    st = lethe_guard_load(path, &gd);
    if (st == LETHE_OK)
        st = lethe_guard_serve_new(dir->model, dir->tok, gd, &c, &s);
    if (st == LETHE_OK)
        st = lethe_guard_serve_generate(s, prompt, strlen(prompt), o->max_new,
                                        (int32_t)dir->eot, &r);
    if (st == LETHE_OK && json) {
        cJSON *j = cJSON_CreateObject();
        cJSON_AddBoolToObject(j, "flagged", r.flagged);
        if (isnan(r.score))
            cJSON_AddNullToObject(j, "guard_score");
        else
            cJSON_AddNumberToObject(j, "guard_score", r.score);
        cJSON_AddBoolToObject(j, "refused", r.out.refused);
        cJSON_AddItemToObject(j, "targets", cJSON_CreateArray());
        for (size_t i = 0; i < r.n_targets; i++)
            cJSON_AddItemToArray(cJSON_GetObjectItem(j, "targets"),
                                 cJSON_CreateNumber(r.targets[i]));
        cJSON_AddNumberToObject(j, "forbidden_ngrams", (double)r.forbidden);
        cJSON_AddNumberToObject(j, "corrupted_positions", (double)r.corrupted);
        cJSON_AddItemToObject(j, "tokens", r.out.n ? cJSON_CreateIntArray(r.out.tokens, r.out.n)
                                                   : cJSON_CreateArray());
        cJSON_AddItemToObject(j, "logprobs", r.out.n ? cJSON_CreateFloatArray(r.out.logprobs,
                                                                              r.out.n)
                                                     : cJSON_CreateArray());
        cJSON_AddNumberToObject(j, "score", r.out.score);
        cJSON_AddStringToObject(j, "stop", lethe_gen_stop_name(r.out.stop));
        cJSON_AddStringToObject(j, "text", r.out.text);
        char *t = cJSON_PrintUnformatted(j);
        printf("%s\n", t ? t : "{}");
        free(t);
        cJSON_Delete(j);
    } else if (st == LETHE_OK) {
        printf("%s\n", r.out.text);
    }
    lethe_guard_serve_result_free(&r);
    lethe_guard_serve_free(s);
    lethe_guard_free(gd);
    return st;
}

/* ALU: the agent pipeline over a chat endpoint, or over the run's model in
 * this process (run set: replies of at most max_new tokens), the guard's
 * automaton and names as its gate and audit. */
static lethe_status alu(const char *path, const lethe_alu_endpoint *e, const char *run,
                        int max_new, const char *prompt, int json)
{
    lethe_guard_t *gd = NULL;
    lethe_alu_result r = {0};
    lethe_gpt_dir dir = {0};
    lethe_alu_local local;
    lethe_status st = run ? lethe_gpt_dir_load(run, 1, &dir) : LETHE_OK;
    if (st == LETHE_OK && run && !dir.tok)
        st = lethe_fail(LETHE_ERR_INVALID, "%s has no tokenizer: ALU's agents talk in text", run);
    if (st == LETHE_OK)
        st = lethe_guard_load(path, &gd);
    if (st == LETHE_OK && run) {
        lethe_alu_local_init(&local, dir.model, dir.tok, (int32_t)dir.eot);
        local.max_tokens = max_new;
        st = lethe_alu_answer(NULL, gd, lethe_alu_local_chat, &local, prompt, &r);
    } else if (st == LETHE_OK) {
        st = lethe_alu_answer(NULL, gd, lethe_alu_http_chat, (void *)e, prompt, &r);
    }
    if (st == LETHE_OK && json) {
        cJSON *j = cJSON_CreateObject();
        cJSON_AddBoolToObject(j, "flagged", r.targets > 0);
        cJSON_AddBoolToObject(j, "refused", r.refused);
        cJSON_AddStringToObject(j, "stage", lethe_alu_stage_name(r.stage));
        cJSON_AddNumberToObject(j, "targets", (double)r.targets);
        cJSON_AddNumberToObject(j, "calls", r.calls);
        cJSON_AddNumberToObject(j, "prompt_tokens", (double)r.prompt_tokens);
        cJSON_AddNumberToObject(j, "completion_tokens", (double)r.completion_tokens);
        if (isnan(r.mean_rating))
            cJSON_AddNullToObject(j, "mean_rating");
        else
            cJSON_AddNumberToObject(j, "mean_rating", r.mean_rating);
        cJSON_AddStringToObject(j, "text", r.text);
        char *t = cJSON_PrintUnformatted(j);
        printf("%s\n", t ? t : "{}");
        free(t);
        cJSON_Delete(j);
    } else if (st == LETHE_OK) {
        printf("%s\n", r.text);
    }
    lethe_alu_result_free(&r);
    lethe_guard_free(gd);
    lethe_gpt_dir_free(&dir);
    return st;
}

/* Progress of a long generation: new tokens chosen so far (beam 0's). */
typedef struct gen_progress {
    lethe_progress p;
    int n_prompt;
} gen_progress;

static void progress_hook(void *ctx, float *logits, int V, const int32_t *seq, int len, int beam)
{
    (void)logits, (void)V, (void)seq;
    gen_progress *g = ctx;
    if (beam == 0)
        lethe_progress_update(&g->p, (uint64_t)(len - g->n_prompt));
}

/* The final line only after a generation long enough to have shown progress. */
static void progress_end(lethe_progress *p)
{
    if (p->last != p->t0)
        lethe_progress_finish(p);
}

int cmd_generate(int argc, char **argv)
{
    enum { O_RUN = 1, O_PROMPT, O_TOKENS, O_MAX, O_TEMP, O_TOPK, O_TOPP, O_BEAM, O_NORM,
           O_STOP, O_SEED, O_JSON, O_QUIET, O_GUARD, O_MODE, O_ECO_FN, O_ECO_K, O_ECO_SIGMA,
           O_ENDPOINT, O_EP_MODEL, O_TIMEOUT };
    static const struct option longopts[] = {
        {"run", 1, 0, O_RUN},      {"prompt", 1, 0, O_PROMPT},  {"tokens", 1, 0, O_TOKENS},
        {"max-new", 1, 0, O_MAX},  {"temperature", 1, 0, O_TEMP}, {"top-k", 1, 0, O_TOPK},
        {"top-p", 1, 0, O_TOPP},   {"beam", 1, 0, O_BEAM},      {"length-norm", 0, 0, O_NORM},
        {"stop", 1, 0, O_STOP},    {"seed", 1, 0, O_SEED},      {"json", 0, 0, O_JSON},
        {"quiet", 0, 0, O_QUIET},  {"guard", 1, 0, O_GUARD},     {"mode", 1, 0, O_MODE},
        {"eco-fn", 1, 0, O_ECO_FN}, {"eco-k", 1, 0, O_ECO_K},  {"eco-sigma", 1, 0, O_ECO_SIGMA},
        {"endpoint", 1, 0, O_ENDPOINT}, {"endpoint-model", 1, 0, O_EP_MODEL},
        {"timeout", 1, 0, O_TIMEOUT},
        {"help", 0, 0, 'h'},       {0, 0, 0, 0}};
    const char *run_dir = NULL, *prompt = NULL, *tokens = NULL, *guard = NULL, *mode = NULL;
    const char *stops[MAX_STOP];
    lethe_gen_opts o;
    lethe_gen_defaults(&o);
    o.temperature = 1.0f;
    int json = 0, quiet = 0, c;
    long max_new = -1, top_k = o.top_k, beam = o.beam, seed = 0, eco_k = 0;
    double temp = o.temperature, top_p = o.top_p;
    lethe_eco_cfg eco;
    lethe_eco_defaults(&eco);
    lethe_alu_endpoint ep;
    lethe_alu_endpoint_defaults(&ep);
    ep.api_key = getenv("LETHE_API_KEY");
    const cli_long_opt ints[] = {{O_MAX, &max_new, 0, 1000000},
                                 {O_ECO_K, &eco_k, 0, 1 << 20},
                                 {O_TOPK, &top_k, 0, (long)LETHE_TOKENIZER_MAX_ID},
                                 {O_BEAM, &beam, 1, MAX_BEAM},
                                 {O_SEED, &seed, 0, 1L << 53}};
    const cli_real_opt reals[] = {{O_TEMP, &temp, 0, 1e6}, {O_ECO_SIGMA, &eco.sigma, 0, 1e12},
                                  {O_TIMEOUT, &ep.timeout_s, 0.001, 86400}};
    cli_getopt_begin();
    while ((c = getopt_long(argc, argv, "h", longopts, NULL)) != -1) {
        int done = cli_numeric_option(VERB, longopts, c, optarg, ints, sizeof ints / sizeof *ints,
                                      reals, 3);
        if (done < 0)
            return -done;
        if (done)
            continue;
        switch (c) {
        case O_RUN: run_dir = optarg; break;
        case O_PROMPT: prompt = optarg; break;
        case O_TOKENS: tokens = optarg; break;
        case O_NORM: o.length_norm = 1; break;
        case O_JSON: json = 1; break;
        case O_QUIET: quiet = 1; break;
        case O_GUARD: guard = optarg; break;
        case O_MODE: mode = optarg; break;
        case O_ENDPOINT: ep.url = optarg; break;
        case O_EP_MODEL: ep.model = optarg; break;
        case O_ECO_FN:
            if (lethe_eco_fn_parse(optarg, &eco.fn))
                return cli_usage(VERB, "%s", lethe_error_detail());
            break;
        case O_TOPP: /* (0, 1]: no cli_real_opt range says "above 0" */
            if (cli_parse_double(optarg, &top_p) || !(top_p > 0 && top_p <= 1))
                return cli_usage(VERB, "--top-p needs a number above 0 and at most 1, not '%s'",
                                 optarg);
            break;
        case O_STOP:
            if (o.n_stop == MAX_STOP)
                return cli_usage(VERB, "at most %d --stop strings", MAX_STOP);
            if (!optarg[0])
                return cli_usage(VERB, "--stop needs a non-empty string");
            stops[o.n_stop++] = optarg;
            break;
        case 'h': print_usage(stdout); return CLI_EXIT_OK;
        default: return cli_bad_option(VERB, argv, longopts);
        }
    }
    int alu_mode = mode && !strcmp(mode, "alu");
    /* not given: 32 tokens, or with alu 256 per agent reply (lethe serve's
     * default limit; ALU's own 512 would be refused there) */
    if (max_new < 0)
        max_new = alu_mode ? 256 : o.max_new;
    o.max_new = (int)max_new, o.top_k = (int)top_k, o.beam = (int)beam, eco.k = (int)eco_k;
    o.seed = (uint64_t)seed, o.temperature = (float)temp, o.top_p = (float)top_p;
    if (optind < argc)
        return cli_usage(VERB, "unexpected argument '%s'", argv[optind]);
    if (alu_mode) { /* the endpoint's model, or the run's */
        if (!guard || !prompt || !ep.url == !run_dir || tokens)
            return cli_usage(VERB, "--mode alu takes --guard, --prompt, and one of --endpoint "
                             "and --run (and no --tokens)");
        if (o.max_new < 1)
            return cli_usage(VERB, "--mode alu needs --max-new >= 1");
        ep.max_tokens = o.max_new;
        lethe_status st = alu(guard, &ep, run_dir, o.max_new, prompt, json);
        return st == LETHE_OK ? CLI_EXIT_OK : cli_report(VERB, st);
    }
    if (ep.url)
        return cli_usage(VERB, "--endpoint goes with --mode alu");
    if (!run_dir)
        return cli_usage(VERB, "--run is required");
    if (!prompt == !tokens)
        return cli_usage(VERB, "give the prompt as either --prompt TEXT or --tokens IDS");
    o.stop = stops;
    if (!guard != !mode)
        return cli_usage(VERB, "--guard and --mode go together");
    if (guard && !prompt)
        return cli_usage(VERB, "--guard needs the prompt as --prompt TEXT");

    lethe_gpt_dir dir;
    int32_t *ids = NULL;
    int n_ids = 0;
    lethe_gen_result r = {0};
    unsigned char *text = NULL;
    size_t text_len = 0;
    lethe_status st = lethe_gpt_dir_load(run_dir, 1, &dir);
    lethe_gpt *g = dir.model;
    lethe_tokenizer_t *tok = dir.tok;
    if (st == LETHE_OK && !tok && (prompt || o.n_stop))
        st = lethe_fail(LETHE_ERR_NOT_FOUND, "%s has no tokenizer (tokenizer.json, or "
                        "vocab.json + merges.txt): give the prompt as --tokens IDS (and no "
                        "--stop)", run_dir);
    if (st == LETHE_OK && guard) {
        st = guarded(&dir, guard, mode, &eco, prompt, &o, json);
        lethe_gpt_dir_free(&dir);
        return st == LETHE_OK ? CLI_EXIT_OK : cli_report(VERB, st);
    }
    if (st == LETHE_OK && prompt) {
        uint32_t *u = NULL;
        size_t n = 0;
        st = lethe_tokenizer_encode(tok, prompt, strlen(prompt), &u, &n);
        if (st == LETHE_OK) {
            ids = malloc(sizeof(int32_t) * (n ? n : 1));
            if (!ids)
                st = lethe_fail(LETHE_ERR_NOMEM, "out of memory");
            for (size_t i = 0; ids && i < n; i++)
                ids[i] = (int32_t)u[i];
            n_ids = (int)n;
        }
        free(u);
        if (st == LETHE_OK && n_ids == 0)
            st = lethe_fail(LETHE_ERR_INVALID, "the prompt is empty");
    } else if (st == LETHE_OK) {
        st = parse_ids(tokens, "--tokens", &ids, &n_ids);
        if (st == LETHE_OK && n_ids == 0)
            st = lethe_fail(LETHE_ERR_INVALID, "--tokens: no ids");
    }
    if (st == LETHE_OK && n_ids > g->cfg.n_positions)
        st = lethe_fail(LETHE_ERR_INVALID, "the prompt has %d tokens; the model's context is %d",
                        n_ids, g->cfg.n_positions);
    if (st == LETHE_OK) {
        o.tok = tok;
        o.eos = (int32_t)dir.eot;
        gen_progress gp = {.n_prompt = n_ids};
        lethe_progress_init(&gp.p, stderr, VERB, "tokens", (uint64_t)o.max_new, quiet);
        o.logits_hook = progress_hook, o.logits_ctx = &gp;
        st = lethe_gpt_generate(g, ids, n_ids, &o, &r);
        if (st == LETHE_OK)
            progress_end(&gp.p);
    }
    if (st == LETHE_OK && tok)
        st = lethe_tokenizer_decode(tok, (const uint32_t *)r.tokens, (size_t)r.n, &text,
                                    &text_len);
    if (st == LETHE_OK)
        print_result(&r, n_ids, tok, text, text_len, json);
    free(text);
    free(ids);
    lethe_gen_result_free(&r);
    lethe_gpt_dir_free(&dir);
    return st == LETHE_OK ? CLI_EXIT_OK : cli_report(VERB, st);
}
