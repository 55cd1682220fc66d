/* lethe guard: fit a guard file for a served model, and add, remove and
 * list its targets (lethe/guard_fit.h; docs/guard.md). */
#include <getopt.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <cjson/cJSON.h>

#include "cli.h"
#include "lethe/guard_fit.h"

#define VERB "guard"
#define MAX_LIST 64 /* aliases, answers or n-grams given on one command line */

static void usage(FILE *out)
{
    lethe_guard_fit_cfg d;
    lethe_guard_fit_defaults(&d);
    fprintf(out,
            "Usage: lethe guard fit --run RUN --data DIR [--split forget10] [--targets FILE]\n"
            "                       --out GUARD [options]\n"
            "       lethe guard add GUARD --name NAME [--alias A]... [--answer TEXT]...\n"
            "                       [--ngram TEXT]...\n"
            "       lethe guard remove GUARD (--name NAME | --id ID)\n"
            "       lethe guard list GUARD [--full] [--json]\n"
            "       lethe guard tune-eco GUARD --run RUN --oracle ORACLE --data DIR (see\n"
            "                       lethe guard tune-eco --help)\n\n"
            "A guard file holds what inference-time unlearning needs for one model: the\n"
            "targets (names and aliases), their forget answers and forbidden n-grams in an\n"
            "Aho-Corasick automaton, and a prompt classifier calibrated to a false-positive\n"
            "rate. fit builds one from a TOFU-layout benchmark: forget pairs from\n"
            "DIR/SPLIT.json, retain pairs from the matching retainYY.json less the retain\n"
            "evaluation questions (retain_perturbed.json). Targets are derived from the\n"
            "forget questions (capitalised names found in two questions or more and never\n"
            "in the retain text) unless --targets gives them: a JSON array of names or of\n"
            "{\"name\": ..., \"aliases\": [...]}. Forbidden n-grams are the shortest word\n"
            "n-grams of each forget answer that the retain text never contains.\n"
            "On a MUSE-layout directory (lethe data make muse-news|muse-books) each forget\n"
            "document is a target and its passages (a 64-word prompt, then the rest of\n"
            "144 words) the forget pairs; the passages of retain1 and retain2 are the\n"
            "retain pairs, less privleak/retain.json's (lethe eval muse's retain VerbMem,\n"
            "kept out of the classifier, in the retain n-grams).\n"
            "add, remove and list change or show a guard file in place (under a lock,\n"
            "written atomically); a change takes effect without refitting the rest.\n"
            "Definitions: docs/guard.md.\n\n"
            "fit options:\n"
            "  --run RUN          the served model (a lethe run or Hugging Face GPT-2 dir)\n"
            "  --data DIR         the benchmark (lethe data make authors, or a MUSE layout)\n"
            "  --split NAME       the forget split (default forget10; TOFU's layout only)\n"
            "  --targets FILE     the targets (default: derived)\n"
            "  --out GUARD        the guard file to write\n"
            "  --force            replace an existing GUARD\n"
            "  --eval-out         leave the retain evaluation questions out of the retain\n"
            "                     n-grams too (by default only the classifier leaves them\n"
            "                     out): what a name the guard never saw costs\n"
            "  --alpha X          the classifier's false-positive rate on retain prompts\n"
            "                     (default %g)\n"
            "  --calib X          share of retain prompts held out to calibrate (default %g)\n"
            "  --max-n N          forbidden n-grams of at most N words, 1 to %d (default %d)\n"
            "  --hash-features    classify hashed word and character n-grams instead of the\n"
            "                     model's hidden state (for endpoints without one)\n"
            "  --layer L          the hidden state to mean-pool (default: the penultimate)\n"
            "  --C X              inverse regularisation of the classifier (default %g)\n"
            "  --seed N           the fit / calibration split (default 0)\n"
            "add, remove and list options:\n"
            "  --name NAME        the target\n"
            "  --alias A, --answer TEXT, --ngram TEXT   repeatable (at most %d each)\n"
            "  --id ID            remove by id\n"
            "  --full             list the answers and n-grams too\n"
            "  --json             print JSON\n"
            "  -h, --help\n\n"
            "Exit codes: 0 ok, 1 failure, 2 usage error, 3 bad input (a file that does not\n"
            "parse, a guard whose checksum fails, an unknown target, a name taken).\n",
            d.alpha, d.calib_share, LETHE_GUARD_NGRAM_MAX, d.max_n, d.C, MAX_LIST);
}

static void print_json(const cJSON *j)
{
    char *t = cJSON_Print(j);
    printf("%s\n", t ? t : "{}");
    free(t);
}

enum { O_RUN = 256, O_DATA, O_SPLIT, O_TARGETS, O_OUT, O_FORCE, O_ALPHA, O_CALIB, O_MAXN,
       O_HASH, O_LAYER, O_C, O_SEED, O_NAME, O_ALIAS, O_ANSWER, O_NGRAM, O_ID, O_FULL,
       O_JSON, O_QUIET, O_EVALOUT };

static const struct option longopts[] = {
    {"run", 1, 0, O_RUN},       {"data", 1, 0, O_DATA},     {"split", 1, 0, O_SPLIT},
    {"targets", 1, 0, O_TARGETS}, {"out", 1, 0, O_OUT},     {"force", 0, 0, O_FORCE},
    {"alpha", 1, 0, O_ALPHA},   {"calib", 1, 0, O_CALIB},   {"max-n", 1, 0, O_MAXN},
    {"hash-features", 0, 0, O_HASH}, {"layer", 1, 0, O_LAYER}, {"C", 1, 0, O_C},
    {"seed", 1, 0, O_SEED},     {"name", 1, 0, O_NAME},     {"alias", 1, 0, O_ALIAS},
    {"answer", 1, 0, O_ANSWER}, {"ngram", 1, 0, O_NGRAM},   {"id", 1, 0, O_ID},
    {"full", 0, 0, O_FULL},     {"json", 0, 0, O_JSON},     {"quiet", 0, 0, O_QUIET},
    {"eval-out", 0, 0, O_EVALOUT},
    {"help", 0, 0, 'h'},        {0, 0, 0, 0}};

/* Everything any subcommand takes; each checks what it was given. */
typedef struct args {
    lethe_guard_fit_files_cfg fit;
    const char *name, *alias[MAX_LIST], *answer[MAX_LIST], *ngram[MAX_LIST];
    size_t n_alias, n_answer, n_ngram;
    long id;
    int full, json, given_fit, given_edit;
} args;

static int push(const char **list, size_t *n, const char *v, const char *what)
{
    if (*n == MAX_LIST)
        return cli_usage(VERB, "at most %d %s", MAX_LIST, what);
    list[(*n)++] = v;
    return 0;
}

static int parse(int argc, char **argv, args *a)
{
    lethe_guard_fit_files_defaults(&a->fit);
    a->id = -1;
    long max_n = a->fit.fit.max_n, layer = -1, seed = 0;
    const cli_long_opt ints[] = {{O_MAXN, &max_n, 1, LETHE_GUARD_NGRAM_MAX},
                                 {O_LAYER, &layer, -1, 1000},
                                 {O_SEED, &seed, 0, 1L << 53},
                                 {O_ID, &a->id, 1, 4294967295L}};
    const cli_real_opt reals[] = {{O_ALPHA, &a->fit.fit.alpha, 1e-9, 0.999999},
                                  {O_CALIB, &a->fit.fit.calib_share, 1e-9, 0.999999},
                                  {O_C, &a->fit.fit.C, 1e-12, 1e12}};
    cli_getopt_begin();
    int c, rc = 0;
    while ((c = getopt_long(argc, argv, "h", longopts, NULL)) != -1 && !rc) {
        int done = cli_numeric_option(VERB, longopts, c, optarg, ints, 4, reals, 3);
        if (done < 0)
            return -done;
        a->given_fit |= done && c != O_ID;
        a->given_edit |= c == O_ID;
        if (done)
            continue;
        switch (c) {
        case O_RUN: a->fit.run = optarg; break;
        case O_DATA: a->fit.data = optarg; break;
        case O_SPLIT: a->fit.split = optarg; break;
        case O_TARGETS: a->fit.targets = optarg; break;
        case O_OUT: a->fit.out = optarg; break;
        case O_FORCE: a->fit.force = 1; break;
        case O_HASH: a->fit.fit.hash_features = 1; break;
        case O_EVALOUT: a->fit.eval_out_of_ngrams = 1; break;
        case O_NAME: a->name = optarg; break;
        case O_ALIAS: rc = push(a->alias, &a->n_alias, optarg, "--alias"); break;
        case O_ANSWER: rc = push(a->answer, &a->n_answer, optarg, "--answer"); break;
        case O_NGRAM: rc = push(a->ngram, &a->n_ngram, optarg, "--ngram"); break;
        case O_FULL: a->full = 1; break;
        case O_JSON: a->json = 1; break;
        case O_QUIET: break;
        case 'h': usage(stdout); return -1;
        default: return cli_bad_option(VERB, argv, longopts);
        }
        a->given_fit |= c == O_RUN || c == O_DATA || c == O_SPLIT || c == O_TARGETS ||
                        c == O_OUT || c == O_FORCE || c == O_HASH || c == O_EVALOUT;
        a->given_edit |= c == O_NAME || c == O_ALIAS || c == O_ANSWER || c == O_NGRAM;
    }
    a->fit.fit.max_n = (int)max_n, a->fit.fit.layer = (int)layer;
    a->fit.fit.seed = (uint64_t)seed;
    return rc;
}

static int run_fit(args *a, int argc, char **argv)
{
    if (optind < argc)
        return cli_usage(VERB, "fit: unexpected argument '%s'", argv[optind]);
    if (a->given_edit || a->full)
        return cli_usage(VERB, "fit takes no --name, --alias, --answer, --ngram, --id or --full");
    if (!a->fit.run || !a->fit.data || !a->fit.out)
        return cli_usage(VERB, "fit needs --run, --data and --out");
    cJSON *sum = NULL;
    lethe_status st = lethe_guard_fit_files(&a->fit, &sum);
    if (st != LETHE_OK)
        return cli_report_out(VERB, st);
    if (a->json) {
        print_json(sum);
    } else {
        for (const cJSON *e = sum->child; e; e = e->next)
            if (cJSON_IsNumber(e))
                printf("%-24s %.6g\n", e->string, e->valuedouble);
            else if (cJSON_IsString(e))
                printf("%-24s %s\n", e->string, e->valuestring);
            else
                printf("%-24s %s\n", e->string, cJSON_IsTrue(e) ? "yes" : "no");
    }
    cJSON_Delete(sum);
    return CLI_EXIT_OK;
}

static int run_list(const args *a, const char *path)
{
    cJSON *j = NULL;
    lethe_status st = lethe_guard_file_describe(path, a->full, &j);
    if (st != LETHE_OK)
        return cli_report(VERB, st);
    if (a->json) {
        print_json(j);
        cJSON_Delete(j);
        return CLI_EXIT_OK;
    }
    const cJSON *clf = cJSON_GetObjectItem(j, "classifier");
    printf("guard %s for model %s (%s)\n", path, cJSON_GetObjectItem(j, "model_hash")->valuestring,
           cJSON_GetObjectItem(j, "model_name")->valuestring);
    if (cJSON_IsObject(clf))
        printf("classifier: %s features, dim %d, tau %.6g at alpha %g (%d calibration prompts)\n",
               cJSON_GetObjectItem(clf, "features")->valuestring,
               cJSON_GetObjectItem(clf, "dim")->valueint,
               cJSON_GetObjectItem(clf, "tau")->valuedouble,
               cJSON_GetObjectItem(clf, "alpha")->valuedouble,
               cJSON_GetObjectItem(clf, "calibration_prompts")->valueint);
    else
        printf("classifier: none\n");
    printf("%-6s %-8s %-7s %-32s %s\n", "ID", "ANSWERS", "NGRAMS", "NAME", "ALIASES");
    const cJSON *t;
    cJSON_ArrayForEach(t, cJSON_GetObjectItem(j, "targets"))
    {
        printf("%-6d %-8d %-7d %-32s", cJSON_GetObjectItem(t, "id")->valueint,
               cJSON_GetObjectItem(t, "answers")->valueint,
               cJSON_GetObjectItem(t, "ngrams")->valueint,
               cJSON_GetObjectItem(t, "name")->valuestring);
        const cJSON *s;
        int first = 1;
        cJSON_ArrayForEach(s, cJSON_GetObjectItem(t, "aliases"))
        {
            printf("%s%s", first ? " " : ", ", s->valuestring);
            first = 0;
        }
        putchar('\n');
        const char *keys[] = {"answer_texts", "ngram_texts"};
        for (int k = 0; k < 2 && a->full; k++)
            cJSON_ArrayForEach(s, cJSON_GetObjectItem(t, keys[k]))
                printf("    %s: %s\n", k ? "ngram" : "answer", s->valuestring);
    }
    cJSON_Delete(j);
    return CLI_EXIT_OK;
}

static int run_edit(const args *a, const char *sub, const char *path)
{
    lethe_guard_edit e = {0};
    if (!strcmp(sub, "add")) {
        if (!a->name || a->id >= 0)
            return cli_usage(VERB, "add needs --name (and takes no --id)");
        e = (lethe_guard_edit){LETHE_GUARD_EDIT_ADD, a->name, 0, a->alias, a->n_alias,
                               a->answer, a->n_answer, a->ngram, a->n_ngram};
    } else {
        if (!a->name == (a->id < 0) || a->n_alias || a->n_answer || a->n_ngram)
            return cli_usage(VERB, "remove needs --name or --id (one of them, nothing else)");
        e = (lethe_guard_edit){.op = LETHE_GUARD_EDIT_REMOVE, .name = a->name,
                               .id = (uint32_t)(a->id < 0 ? 0 : a->id)};
    }
    uint32_t id = 0;
    lethe_status st = lethe_guard_file_edit(path, &e, &id);
    if (st != LETHE_OK)
        return cli_report(VERB, st);
    if (a->json)
        printf("{\"op\": \"%s\", \"id\": %u}\n", sub, id);
    else
        printf("%s target %u\n", e.op == LETHE_GUARD_EDIT_ADD ? "added" : "removed", id);
    return CLI_EXIT_OK;
}

int cmd_guard(int argc, char **argv)
{
    if (argc < 2)
        return cli_usage(VERB, "missing a subcommand: fit, add, remove, list or tune-eco");
    const char *sub = argv[1];
    if (!strcmp(sub, "--help") || !strcmp(sub, "-h")) {
        usage(stdout);
        return CLI_EXIT_OK;
    }
    if (!strcmp(sub, "tune-eco"))
        return cmd_guard_tune_eco(argc - 1, argv + 1);
    int fit = !strcmp(sub, "fit"), list = !strcmp(sub, "list");
    if (!fit && !list && strcmp(sub, "add") && strcmp(sub, "remove"))
        return cli_usage(VERB, "unknown subcommand '%s' (expected fit, add, remove, list or tune-eco)",
                         sub);
    args a = {0};
    int rc = parse(argc - 1, argv + 1, &a);
    if (rc)
        return rc < 0 ? CLI_EXIT_OK : rc;
    if (fit)
        return run_fit(&a, argc - 1, argv + 1);
    if (optind != argc - 2)
        return cli_usage(VERB, "%s needs one guard file", sub);
    if (a.given_fit)
        return cli_usage(VERB, "%s takes none of fit's options", sub);
    const char *path = argv[optind + 1];
    if (list) {
        if (a.given_edit)
            return cli_usage(VERB, "list takes only --full and --json");
        return run_list(&a, path);
    }
    if (a.full)
        return cli_usage(VERB, "%s takes no --full", sub);
    return run_edit(&a, sub, path);
}
