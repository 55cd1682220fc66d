/* bench_guard: what a guard costs per generated token, against the number
 * of targets it holds (bench/RESULTS.md, docs/results-guard.md).
 *
 *   bench_guard RUN GUARD DATA [--tokens N] [--prompts N] [--reps N]
 *
 * RUN is the served model, GUARD a guard fitted for it (lethe guard fit),
 * DATA its TOFU-layout benchmark. For 1, 100, 10,000 and 100,000 targets
 * (the guard's first target alone; then the guard's own plus synthetic ones,
 * each with two aliases, an answer and five n-grams, so the automaton and
 * the retrieval grow with them) it times, at one thread:
 *   plain     greedy decoding without a guard (lethe_guard_decode, no set)
 *   unflagged the session on retain questions the guard does not flag
 *   flagged   the session on forget questions (all flagged: beam search of
 *             width 7 under the forbidden set)
 * each --prompts questions of --tokens new tokens (no end-of-text stop, so
 * every answer has the same length), --reps times; prints one JSON object
 * per target count with the median tokens per second of each, and the time
 * to add the synthetic targets and build the automaton. */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#ifdef _OPENMP
#include <omp.h>
#endif

#include "lethe/authors.h"
#include "lethe/gemm.h"
#include "lethe/gpt_hf.h"
#include "lethe/guard_serve.h"

static double now(void)
{
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (double)ts.tv_sec + 1e-9 * (double)ts.tv_nsec;
}

static int cmp(const void *a, const void *b)
{
    double x = *(const double *)a, y = *(const double *)b;
    return (x > y) - (x < y);
}

static void die(const char *what, lethe_status st)
{
    fprintf(stderr, "bench_guard: %s: %s\n", what, lethe_error_detail());
    exit(st ? 1 : 2);
}

/* Synthetic target i: a made-up name from syllables, unique per i. */
static void synth_name(size_t i, char *out, size_t cap)
{
    static const char *const syl[] = {"ka", "lo", "mi", "ren", "tu", "sa", "vor", "del",
                                      "qui", "zan", "bre", "ost", "ul", "fen", "gar", "nyx"};
    char first[32] = "", last[32] = "";
    size_t a = i, b = i / 4096;
    for (int k = 0; k < 3; k++, a /= 16)
        strcat(first, syl[a % 16]);
    for (int k = 0; k < 3; k++, b /= 16)
        strcat(last, syl[(b + (size_t)k * 7) % 16]);
    first[0] = (char)(first[0] - 'a' + 'A'), last[0] = (char)(last[0] - 'a' + 'A');
    snprintf(out, cap, "%s %sx%zu", first, last, i);
}

static void add_synthetic(lethe_guard_t *g, size_t n)
{
    char name[96], alias[96], text[256];
    for (size_t i = 0; i < n; i++) {
        synth_name(i, name, sizeof name);
        snprintf(alias, sizeof alias, "Synth%zu", i);
        const char *al[] = {alias, strchr(name, ' ') + 1};
        uint32_t id;
        lethe_status st = lethe_guard_add_target(g, name, al, 2, &id);
        if (st)
            die("add target", st);
        snprintf(text, sizeof text, "%s was born in Port %zu and wrote %zu novels about %s.",
                 name, i % 997, i % 31, alias);
        if ((st = lethe_guard_add_answer(g, id, text)))
            die("add answer", st);
        for (int k = 0; k < 5; k++) {
            snprintf(text, sizeof text, "%s fact%d %zu", alias, k, i);
            if ((st = lethe_guard_add_ngram(g, id, text)))
                die("add ngram", st);
        }
    }
}

typedef struct prompts {
    char **p;
    size_t n;
} prompts;

static prompts load_prompts(const char *path, size_t max)
{
    lethe_tofu t;
    lethe_status st = lethe_tofu_load(path, &t);
    if (st)
        die(path, st);
    prompts p = {calloc(t.n, sizeof(char *)), 0};
    for (size_t i = 0; i < t.n && p.n < max; i++)
        if (asprintf(&p.p[p.n], "Question: %s\nAnswer:", t.rows[i].question) > 0)
            p.n++;
    lethe_tofu_free(&t);
    return p;
}

/* Tokens per second over the prompts (each answered once): plain greedy
 * decoding when s is NULL, else the session's answers; *used prompts. */
static double run(const lethe_gpt_dir *d, const lethe_guard_serve_t *s, const prompts *p,
                  int tokens, size_t *used)
{
    double t0 = now();
    long total = 0;
    *used = 0;
    for (size_t i = 0; i < p->n; i++) {
        size_t len = strlen(p->p[i]);
        if (s) {
            lethe_guard_serve_result r;
            lethe_status st = lethe_guard_serve_generate(s, p->p[i], len, tokens, -1, &r);
            if (st)
                die("serve", st);
            total += r.out.refused ? tokens : r.out.n; /* a refusal: the whole search ran */
            lethe_guard_serve_result_free(&r);
        } else {
            uint32_t *u;
            size_t n;
            lethe_status st = lethe_tokenizer_encode(d->tok, p->p[i], len, &u, &n);
            int32_t ids[512];
            for (size_t k = 0; k < n && k < 512; k++)
                ids[k] = (int32_t)u[k];
            free(u);
            lethe_guard_decode_opts o;
            lethe_guard_decode_defaults(&o);
            o.beam = 1, o.max_new = tokens;
            lethe_guard_decode_result r;
            if (st || (st = lethe_guard_decode(d->model, d->tok, NULL, ids, (int)n, &o, &r)))
                die("decode", st);
            total += r.n;
            lethe_guard_decode_result_free(&r);
        }
        ++*used;
    }
    return (double)total / (now() - t0);
}

/* The prompts of p the session flags (want 1) or does not (want 0). */
static prompts select_prompts(const lethe_guard_serve_t *s, const prompts *p, int want)
{
    prompts q = {calloc(p->n ? p->n : 1, sizeof(char *)), 0};
    for (size_t i = 0; i < p->n; i++) {
        lethe_guard_serve_result r;
        if (lethe_guard_serve_generate(s, p->p[i], strlen(p->p[i]), 1, -1, &r))
            die("serve", 1);
        if (r.flagged == want)
            q.p[q.n++] = p->p[i];
        lethe_guard_serve_result_free(&r);
    }
    return q;
}

static double median(double *v, int n)
{
    qsort(v, (size_t)n, sizeof *v, cmp);
    return n % 2 ? v[n / 2] : 0.5 * (v[n / 2 - 1] + v[n / 2]);
}

int main(int argc, char **argv)
{
    if (argc < 4) {
        fprintf(stderr, "usage: bench_guard RUN GUARD DATA [--tokens N] [--prompts N] "
                        "[--reps N]\n");
        return 2;
    }
    int tokens = 32, reps = 5;
    size_t n_prompts = 20;
    for (int i = 4; i + 1 < argc; i += 2) {
        if (!strcmp(argv[i], "--tokens"))
            tokens = atoi(argv[i + 1]);
        else if (!strcmp(argv[i], "--prompts"))
            n_prompts = (size_t)atoi(argv[i + 1]);
        else if (!strcmp(argv[i], "--reps"))
            reps = atoi(argv[i + 1]);
    }
#ifdef _OPENMP
    omp_set_num_threads(1);
#endif
    lethe_flush_subnormals();
    lethe_gpt_dir d;
    lethe_status st = lethe_gpt_dir_load(argv[1], 1, &d);
    if (st)
        die(argv[1], st);
    char path[4096];
    snprintf(path, sizeof path, "%s/forget10.json", argv[3]);
    prompts forget = load_prompts(path, n_prompts);
    snprintf(path, sizeof path, "%s/retain_perturbed.json", argv[3]);
    prompts retain_all = load_prompts(path, 4 * n_prompts);
    const size_t counts[] = {1, 100, 10000, 100000};
    for (int c = 0; c < 4; c++) {
        lethe_guard_t *g;
        if ((st = lethe_guard_load(argv[2], &g)))
            die(argv[2], st);
        size_t own = lethe_guard_target_count(g);
        double t0 = now();
        if (counts[c] == 1) {
            while (lethe_guard_target_count(g) > 1) {
                lethe_guard_target_info t;
                lethe_guard_target_get(g, 1, &t);
                lethe_guard_remove_target(g, t.id);
            }
        } else {
            add_synthetic(g, counts[c] - own);
        }
        if ((st = lethe_guard_ac_build(lethe_guard_automaton(g))))
            die("build", st);
        double build_s = now() - t0;
        lethe_guard_serve_t *s;
        if ((st = lethe_guard_serve_new(d.model, d.tok, g, NULL, &s)))
            die("session", st);
        prompts unflagged = select_prompts(s, &retain_all, 0);
        if (unflagged.n > n_prompts)
            unflagged.n = n_prompts;
        double plain[64], unfl[64], fl[64];
        size_t used_u = 0, used_f = 0, used_p = 0;
        for (int r = 0; r < reps && r < 64; r++) {
            plain[r] = run(&d, NULL, &unflagged, tokens, &used_p);
            unfl[r] = run(&d, s, &unflagged, tokens, &used_u);
            fl[r] = run(&d, s, &forget, tokens, &used_f);
        }
        double mp = median(plain, reps), mu = median(unfl, reps), mf = median(fl, reps);
        printf("{\"targets\": %zu, \"automaton_mb\": %.1f, \"add_and_build_s\": %.3f, "
               "\"plain_tok_s\": %.1f, \"unflagged_tok_s\": %.1f, \"flagged_tok_s\": %.1f, "
               "\"unflagged_over_plain\": %.3f, \"unflagged_prompts\": %zu, "
               "\"flagged_prompts\": %zu, \"tokens\": %d, \"reps\": %d}\n",
               lethe_guard_target_count(g),
               (double)lethe_guard_ac_memory(lethe_guard_automaton(g)) / 1e6, build_s, mp, mu,
               mf, mu / mp, used_u, used_f, tokens, reps);
        fflush(stdout);
        free(unflagged.p);
        lethe_guard_serve_free(s);
        lethe_guard_free(g);
    }
    for (size_t i = 0; i < forget.n; i++)
        free(forget.p[i]);
    for (size_t i = 0; i < retain_all.n; i++)
        free(retain_all.p[i]);
    free(forget.p);
    free(retain_all.p);
    lethe_gpt_dir_free(&d);
    return 0;
}
