/* lethe eval tofu: TOFU's metrics on a GPT run (lethe/tofu.h, docs/tofu.md):
 * the forget split, the retain evaluation set and the two general-knowledge
 * sets; Forget Quality against an oracle; Model Utility. */
#include <getopt.h>
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <cJSON.h>

#include "cli.h"
#include "lethe/authors.h"
#include "lethe/fileio.h"
#include "lethe/gpt_hf.h"
#include "lethe/lm_unlearn.h"
#include "lethe/run.h"
#include "lethe/tofu.h"

#define VERB "eval tofu"

/* The evaluation sets: name in the files, file (with %s for the split). */
static const struct {
    const char *name, *file;
    int kind;
} sets[] = {
    {"forget", "%s_perturbed.json", LETHE_TOFU_FORGET},
    {"retain", "retain_perturbed.json", LETHE_TOFU_RETAIN},
    {"real_authors", "real_authors_perturbed.json", LETHE_TOFU_FACTS},
    {"world_facts", "world_facts_perturbed.json", LETHE_TOFU_FACTS},
};
enum { N_SETS = sizeof sets / sizeof sets[0] };

struct opts {
    const char *run, *oracle, *data, *split, *out, *whp;
    double whp_alpha;
    int json, quiet;
    lethe_tofu_opts t;
};

/* WHP's alpha unless given: the unlearning method's. */
static double whp_alpha_default(void)
{
    lethe_lm_cfg c;
    lethe_lm_defaults(LETHE_LM_WHP, &c);
    return c.alpha;
}

static void usage(FILE *out)
{
    lethe_tofu_opts d;
    lethe_tofu_defaults(&d);
    fprintf(out,
            "Usage: lethe eval tofu --run RUN --data DIR --split forgetXX [--oracle RUN]\n"
            "                       [--out DIR] [--json] [options]\n\n"
            "TOFU's metrics on a GPT run (a lethe run or a Hugging Face GPT-2 directory):\n"
            "on the forget split (DIR/forgetXX_perturbed.json), the retain evaluation set\n"
            "(retain_perturbed.json) and the general-knowledge sets\n"
            "(real_authors_perturbed.json, world_facts_perturbed.json): length-normalised\n"
            "answer probability, ROUGE-L recall of the greedy answer, truth ratio, exact\n"
            "memorisation and extraction strength; Model Utility (harmonic mean of the\n"
            "three measures on the three non-forget sets); with --oracle, Forget Quality\n"
            "(KS-test p-value between the model's and the oracle's truth ratios on the\n"
            "forget split). Questions are laid out \"Question: Q\\nAnswer:\" as in training.\n"
            "Writes TOFU_EVAL.json (per question) and TOFU_SUMMARY.json. Definitions:\n"
            "docs/tofu.md.\n\n"
            "  --run RUN        the model to evaluate\n"
            "  --data DIR       the benchmark (lethe data make authors, or TOFU's files)\n"
            "  --split NAME     forget01, forget05 or forget10 (any NAME with a\n"
            "                   DIR/NAME_perturbed.json)\n"
            "  --oracle RUN     the model fine-tuned on the retain split only\n"
            "  --out DIR        where to write the files, created if needed (default: RUN)\n"
            "  --json           print the summary as JSON\n"
            "  --max-new N      greedy answer length for ROUGE-L (%d)\n"
            "  --batch N        question-answer pairs per forward (%d)\n"
            "  --arithmetic     truth ratio from the arithmetic mean of the perturbed\n"
            "                   answers' probabilities (TOFU's paper) instead of the\n"
            "                   geometric mean (TOFU's and OpenUnlearning's code)\n"
            "  --no-generate    skip the greedy answers (no ROUGE-L, no Model Utility)\n"
            "  --memorization C exact memorisation and extraction strength: paper (every\n"
            "                   answer token; the default) or openunlearning (without the\n"
            "                   end-of-text token; ES 1/n when no suffix is right)\n"
            "  --whp RUN        evaluate WHP (Who's Harry Potter): RUN is the model of\n"
            "                   --run fine-tuned further on the forget set (lethe unlearn\n"
            "                   --method sft); every logit row z of --run becomes\n"
            "                   z - alpha relu(z_RUN - z), in scoring and in generation\n"
            "  --whp-alpha A    WHP's alpha (%g)\n"
            "  --quiet          no progress lines on stderr (a long evaluation shows them\n"
            "                   every few seconds, per set)\n"
            "  -h, --help\n\n"
            "Exit codes: 0 ok, 1 failure, 2 usage error, 3 bad input.\n",
            d.max_new, d.batch, whp_alpha_default());
}

enum {
    O_RUN = 256, O_ORACLE, O_DATA, O_SPLIT, O_OUT, O_JSON, O_MAXNEW, O_BATCH, O_ARITH, O_NOGEN,
    O_WHP, O_WHP_ALPHA, O_MEMO, O_QUIET
};

static int parse(int argc, char **argv, struct opts *o)
{
    static const struct option lo[] = {
        {"run", 1, 0, O_RUN},       {"oracle", 1, 0, O_ORACLE}, {"data", 1, 0, O_DATA},
        {"split", 1, 0, O_SPLIT},   {"out", 1, 0, O_OUT},       {"json", 0, 0, O_JSON},
        {"max-new", 1, 0, O_MAXNEW}, {"batch", 1, 0, O_BATCH}, {"arithmetic", 0, 0, O_ARITH},
        {"no-generate", 0, 0, O_NOGEN}, {"whp", 1, 0, O_WHP}, {"whp-alpha", 1, 0, O_WHP_ALPHA},
        {"memorization", 1, 0, O_MEMO}, {"quiet", 0, 0, O_QUIET}, {"help", 0, 0, 'h'},
        {0, 0, 0, 0}};
    memset(o, 0, sizeof *o);
    lethe_tofu_defaults(&o->t);
    o->whp_alpha = whp_alpha_default();
    long max_new = o->t.max_new, batch = o->t.batch;
    const cli_long_opt ints[] = {{O_MAXNEW, &max_new, 1, 100000}, {O_BATCH, &batch, 1, 100000}};
    const cli_real_opt reals[] = {{O_WHP_ALPHA, &o->whp_alpha, 0, 1e6}};
    cli_getopt_begin();
    int c;
    while ((c = getopt_long(argc, argv, "h", lo, NULL)) != -1) {
        int done = cli_numeric_option(VERB, lo, c, optarg, ints, 2, reals, 1);
        if (done < 0)
            return -done;
        if (done)
            continue;
        switch (c) {
        case O_RUN: o->run = optarg; break;
        case O_ORACLE: o->oracle = optarg; break;
        case O_DATA: o->data = optarg; break;
        case O_SPLIT: o->split = optarg; break;
        case O_OUT: o->out = optarg; break;
        case O_JSON: o->json = 1; break;
        case O_ARITH: o->t.arithmetic = 1; break;
        case O_NOGEN: o->t.no_generate = 1; break;
        case O_WHP: o->whp = optarg; break;
        case O_MEMO:
            if (!strcmp(optarg, "paper") || !strcmp(optarg, "openunlearning"))
                o->t.memo = *optarg == 'p' ? LETHE_TOFU_MEMO_PAPER : LETHE_TOFU_MEMO_OU;
            else
                return cli_usage(VERB, "--memorization is paper or openunlearning");
            break;
        case O_QUIET: o->quiet = 1; break;
        case 'h': usage(stdout); return -1;
        default: return cli_bad_option(VERB, argv, lo);
        }
    }
    o->t.max_new = (int)max_new, o->t.batch = (int)batch;
    if (optind < argc)
        return cli_usage(VERB, "unexpected argument '%s'", argv[optind]);
    if (!o->run || !o->data || !o->split)
        return cli_usage(VERB, "--run, --data and --split are required");
    if (strchr(o->split, '/'))
        return cli_usage(VERB, "--split is a name such as forget10, not a path");
    return 0;
}

/* Items pointing into the rows of t. */
static lethe_qa *as_items(const lethe_tofu *t)
{
    lethe_qa *q = calloc(t->n ? t->n : 1, sizeof *q);
    for (size_t i = 0; q && i < t->n; i++) {
        const lethe_tofu_row *r = &t->rows[i];
        q[i] = (lethe_qa){r->question, r->answer, r->paraphrased_answer,
                          (const char *const *)r->perturbed, (int)r->n_perturbed};
    }
    return q;
}

/* Evaluate one set of DIR on model m (`who`: "model" or "oracle"), its logits
 * adjusted by WHP's reinforced model whp when not NULL. */
static lethe_status eval_one(const struct opts *o, int s, lethe_gpt_dir *m, const char *who,
                             const lethe_gpt *whp, int no_generate, lethe_tofu_set *out)
{
    char file[512], path[4096];
    snprintf(file, sizeof file, sets[s].file, o->split);
    snprintf(path, sizeof path, "%s/%s", o->data, file);
    lethe_tofu t = {0};
    lethe_status st = lethe_tofu_load(path, &t);
    if (st)
        return st;
    lethe_qa *items = as_items(&t);
    lethe_lm_whp *w = whp ? lethe_lm_whp_new(whp, o->whp_alpha) : NULL;
    lethe_gpt_logits_proc proc = lethe_lm_whp_proc(w);
    lethe_tofu_opts to = o->t;
    to.no_generate = no_generate;
    to.logits = w ? &proc : NULL;
    char label[96];
    snprintf(label, sizeof label, VERB " %s, %s set", who, sets[s].name);
    lethe_progress prog;
    lethe_progress_init(&prog, stderr, label, "questions", t.n, o->quiet);
    to.progress = &prog;
    st = items && (w || !whp) ? lethe_tofu_eval_set(m->model, m->tok, (int32_t)m->eot, items,
                                                    t.n, sets[s].kind, &to, out)
                              : lethe_fail(LETHE_ERR_NOMEM, "out of memory");
    if (st && st != LETHE_ERR_NOMEM)
        st = lethe_fail(st, "%s: %s", path, lethe_error_detail());
    if (!st && prog.last != prog.t0) /* a final line after shown progress */
        lethe_progress_finish(&prog);
    lethe_lm_whp_free(w);
    free(items);
    lethe_tofu_free(&t);
    return st;
}

static lethe_status load_model(const char *dir, lethe_gpt_dir *d)
{
    lethe_status st = lethe_gpt_dir_load(dir, 1, d);
    if (st)
        return st;
    if (!d->tok || d->eot < 0) {
        lethe_gpt_dir_free(d);
        return lethe_fail(LETHE_ERR_FORMAT, "%s: TOFU's metrics need the run's tokenizer with an "
                          "<|endoftext|> token", dir);
    }
    return LETHE_OK;
}

static void add_num(cJSON *o, const char *key, double v)
{
    if (isfinite(v))
        cJSON_AddNumberToObject(o, key, v);
    else
        cJSON_AddNullToObject(o, key);
}

static cJSON *per_sample(const lethe_tofu_set *r)
{
    cJSON *a = cJSON_CreateArray();
    for (size_t i = 0; a && i < r->n; i++) {
        const lethe_tofu_sample *s = &r->samples[i];
        cJSON *e = cJSON_CreateObject();
        cJSON_AddNumberToObject(e, "index", (double)i);
        add_num(e, "prob", s->prob);
        add_num(e, "rougeL_recall", s->rouge_l);
        add_num(e, "truth_ratio", s->truth_ratio);
        add_num(e, "exact_memorization", s->em);
        add_num(e, "extraction_strength", s->es);
        if (s->generated)
            cJSON_AddStringToObject(e, "generated", s->generated);
        cJSON_AddItemToArray(a, e);
    }
    return a;
}

static lethe_status write_json(const char *dir, const char *name, cJSON *j)
{
    char path[4096];
    snprintf(path, sizeof path, "%s/%s", dir, name);
    char *text = cJSON_Print(j);
    if (!text)
        return lethe_fail(LETHE_ERR_NOMEM, "out of memory");
    size_t len = strlen(text);
    text[len] = '\n'; /* cJSON_Print's NUL becomes the final newline */
    lethe_status st = lethe_file_write_atomic(path, text, len + 1);
    free(text);
    return st;
}

int cmd_eval_tofu(int argc, char **argv)
{
    struct opts o;
    int rc = parse(argc, argv, &o);
    if (rc)
        return rc < 0 ? CLI_EXIT_OK : rc;
    lethe_gpt_dir m = {0}, orc = {0}, whp = {0};
    lethe_tofu_set res[N_SETS] = {{0}}, oracle_forget = {0};
    cJSON *eval = NULL, *sum = NULL;
    lethe_status st = load_model(o.run, &m);
    if (!st && o.oracle)
        st = load_model(o.oracle, &orc);
    if (!st && o.whp && (st = lethe_gpt_dir_load(o.whp, 0, &whp)) == LETHE_OK &&
        memcmp(&whp.model->cfg, &m.model->cfg, sizeof m.model->cfg))
        st = lethe_fail(LETHE_ERR_FORMAT, "%s: WHP's reinforced model needs the architecture of "
                        "%s", o.whp, o.run);
    for (int s = 0; s < N_SETS && !st; s++)
        st = eval_one(&o, s, &m, "model", whp.model, o.t.no_generate, &res[s]);
    /* the oracle's truth ratios on the forget split (no generation needed) */
    if (!st && o.oracle)
        st = eval_one(&o, 0, &orc, "oracle", NULL, 1, &oracle_forget);
    double fq = NAN, mu = NAN;
    if (!st && o.oracle)
        st = lethe_tofu_forget_quality(&res[0], &oracle_forget, &fq);
    if (!st && !o.t.no_generate) {
        const lethe_tofu_set *u[3] = {&res[1], &res[2], &res[3]};
        st = lethe_tofu_model_utility(u, 3, &mu);
    }
    const char *dir = o.out ? o.out : o.run;
    if (!st)
        st = lethe_run_mkdir(dir);
    if (st)
        goto done;
    eval = cJSON_CreateObject();
    sum = cJSON_CreateObject();
    cJSON_AddStringToObject(sum, "split", o.split);
    cJSON_AddStringToObject(sum, "truth_ratio_mean", o.t.arithmetic ? "arithmetic" : "geometric");
    if (o.t.memo == LETHE_TOFU_MEMO_OU)
        cJSON_AddStringToObject(sum, "memorization", "openunlearning");
    if (o.whp) {
        cJSON_AddStringToObject(sum, "whp", o.whp);
        cJSON_AddNumberToObject(sum, "whp_alpha", o.whp_alpha);
    }
    for (int s = 0; s < N_SETS; s++) {
        char key[64];
        const lethe_tofu_set *r = &res[s];
        cJSON_AddItemToObject(eval, sets[s].name, per_sample(r));
        static const char *const what[5] = {"prob", "rougeL_recall", "truth_ratio",
                                            "exact_memorization", "extraction_strength"};
        const double v[5] = {r->prob, r->rouge_l, r->truth_ratio, r->em, r->es};
        for (int k = 0; k < 5; k++) {
            snprintf(key, sizeof key, "%s_%s", sets[s].name, what[k]);
            add_num(sum, key, v[k]);
        }
    }
    add_num(sum, "forget_quality", fq);
    add_num(sum, "model_utility", mu);
    st = write_json(dir, "TOFU_EVAL.json", eval);
    if (!st)
        st = write_json(dir, "TOFU_SUMMARY.json", sum);
    if (st)
        goto done;
    if (o.json) {
        char *text = cJSON_Print(sum);
        if (text)
            puts(text);
        free(text);
    } else {
        for (cJSON *e = sum->child; e; e = e->next)
            if (cJSON_IsNumber(e))
                printf("%-34s %.6g\n", e->string, e->valuedouble);
            else if (cJSON_IsNull(e))
                printf("%-34s -\n", e->string);
        printf("wrote %s/TOFU_EVAL.json and %s/TOFU_SUMMARY.json\n", dir, dir);
    }
done:
    cJSON_Delete(eval);
    cJSON_Delete(sum);
    for (int s = 0; s < N_SETS; s++)
        lethe_tofu_set_free(&res[s]);
    lethe_tofu_set_free(&oracle_forget);
    lethe_gpt_dir_free(&m);
    lethe_gpt_dir_free(&orc);
    lethe_gpt_dir_free(&whp);
    return st ? cli_report(VERB, st) : CLI_EXIT_OK;
}
