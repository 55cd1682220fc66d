/* Learning tasks: registered data sets as train and test lethe_datasets. */
#include "lethe/task.h"
#include "lethe/data.h"
#include "lethe/loaders.h"
#include "lethe/mem.h"

#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#define TEST_STREAM 0x7e57u /* keyed hash choosing the test 20% of tabular sets */
#define TEST_FRAC 0.2
#define DEFAULT_WINDOW 14

static const lethe_task_info table[] = {
    {"fashion-mnist", "fashion-mnist", LETHE_TASK_CLASSIFY,
     "28x28 clothing images, 10 classes; 60000 train, 10000 test", "mlp"},
    {"digits", "digits", LETHE_TASK_CLASSIFY,
     "8x8 handwritten digits, 10 classes; 1797 samples, 20% test", "mlp"},
    {"iris", "iris", LETHE_TASK_CLASSIFY, "4 flower measurements, 3 species; 20% test", "mlp"},
    {"wine", "wine", LETHE_TASK_CLASSIFY, "13 chemical features, 3 cultivars; 20% test", "mlp"},
    {"breast-cancer", "breast-cancer", LETHE_TASK_CLASSIFY,
     "30 tumour features, benign or malignant; 20% test", "mlp"},
    {"diabetes", "diabetes", LETHE_TASK_REGRESS,
     "10 patient features to disease progression after a year; 20% test", "mlp"},
    {"boston", "boston", LETHE_TASK_REGRESS,
     "13 census-tract features to median house value ($1000s); 20% test", "mlp"},
    {"cps-wages", "cps-wages", LETHE_TASK_REGRESS,
     "1985 CPS: education, experience, sector, ... to hourly wage; 20% test", "mlp"},
    {"us-births", "us-births", LETHE_TASK_REGRESS,
     "daily US births: the last WINDOW days and the weekday to the next day; last 20% test",
     "mlp"},
};
#define N_TASKS (sizeof table / sizeof table[0])

size_t lethe_tasks_count(void) { return N_TASKS; }

const lethe_task_info *lethe_tasks_at(size_t i) { return i < N_TASKS ? &table[i] : NULL; }

lethe_status lethe_task_find(const char *name, const lethe_task_info **out)
{
    for (size_t i = 0; i < N_TASKS; i++)
        if (!strcmp(table[i].name, name)) {
            *out = &table[i];
            return LETHE_OK;
        }
    char names[512] = "";
    for (size_t i = 0; i < N_TASKS; i++) {
        size_t n = strlen(names);
        snprintf(names + n, sizeof names - n, "%s%s", i ? ", " : "", table[i].name);
    }
    return lethe_fail(LETHE_ERR_NOT_FOUND, "unknown data set '%s'; the tasks are: %s", name,
                      names);
}

/* The path of file in registry entry `data`, failing when it is absent. */
static lethe_status data_file(const char *data, const char *file, char *buf, size_t cap)
{
    const lethe_data_entry *e;
    lethe_data_state s;
    lethe_status st = lethe_data_find(data, &e);
    if (st == LETHE_OK)
        st = lethe_data_probe(e, &s);
    if (st != LETHE_OK)
        return st;
    if (!s.installed)
        return lethe_fail(LETHE_ERR_NOT_FOUND,
                          "data set '%s' is not installed (%s package %s); run 'lethe data "
                          "install %s'",
                          data, lethe_data_source_name(e->source), e->package, data);
    return lethe_data_path(e, file, buf, cap);
}

static lethe_status read_csv(const char *data, const char *file, char delim, int header,
                             size_t skip, lethe_csv *out)
{
    char path[4096];
    lethe_status st = data_file(data, file, path, sizeof path);
    if (st != LETHE_OK)
        return st;
    lethe_csv_opts o = {.delim = delim, .header = header, .skip_lines = skip};
    return lethe_csv_read(path, &o, out);
}

/* ---- sources: each fills one data set of every sample, ids 0..n-1 ---- */

static lethe_status load_idx_pair(const char *images, const char *labels, const char *name,
                                  uint64_t first_id, lethe_dataset **out)
{
    char pi[4096], pl[4096];
    lethe_idx xi = {0}, yi = {0};
    lethe_status st = data_file("fashion-mnist", images, pi, sizeof pi);
    if (st == LETHE_OK)
        st = data_file("fashion-mnist", labels, pl, sizeof pl);
    if (st == LETHE_OK)
        st = lethe_idx_read(pi, &xi);
    if (st == LETHE_OK)
        st = lethe_idx_read(pl, &yi);
    if (st != LETHE_OK)
        goto done;
    if (xi.type != LETHE_IDX_U8 || xi.ndim != 3 || xi.dims[1] != 28 || xi.dims[2] != 28 ||
        yi.type != LETHE_IDX_U8 || yi.ndim != 1 || yi.dims[0] != xi.dims[0]) {
        st = lethe_fail(LETHE_ERR_FORMAT, "%s, %s: expected N 28x28 ubyte images and N labels",
                        pi, pl);
        goto done;
    }
    long n = (long)xi.dims[0];
    lethe_dataset *ds = lethe_dataset_alloc(name, LETHE_TASK_CLASSIFY, n, 784, 0);
    if (!ds) {
        st = LETHE_ERR_NOMEM;
        goto done;
    }
    ds->c = 1, ds->h = 28, ds->w = 28, ds->n_classes = 10;
    lethe_idx_to_float(&xi, 1.0f / 255.0f, ds->x);
    for (long i = 0; i < n; i++) {
        ds->y[i] = yi.data[i];
        ds->ids[i] = first_id + (uint64_t)i;
        if (ds->y[i] > 9) {
            lethe_dataset_free(ds);
            st = lethe_fail(LETHE_ERR_FORMAT, "%s: label %d of item %ld is not 0-9", pl,
                            (int)yi.data[i], i);
            goto done;
        }
    }
    *out = ds;
done:
    lethe_idx_free(&xi);
    lethe_idx_free(&yi);
    return st;
}

/* A classification table: numeric feature columns then an integer label. */
static lethe_status from_label_table(const lethe_csv *c, const char *name, int n_classes,
                                     lethe_dataset **out)
{
    int d = (int)c->n_cols - 1;
    long n = (long)c->n_rows;
    double *lab = malloc((size_t)n * sizeof *lab);
    lethe_dataset *ds = lethe_dataset_alloc(name, LETHE_TASK_CLASSIFY, n, d, 0);
    lethe_status st = !lab || !ds ? lethe_fail(LETHE_ERR_NOMEM, "%s: out of memory", name)
                                  : lethe_csv_to_float(c, 0, (size_t)d, ds->x);
    if (st == LETHE_OK)
        st = lethe_csv_to_double(c, (size_t)d, 1, lab);
    for (long i = 0; st == LETHE_OK && i < n; i++) {
        if (lab[i] != floor(lab[i]) || lab[i] < 0 || lab[i] >= n_classes)
            st = lethe_fail(LETHE_ERR_FORMAT, "%s:%zu: label %g is not a class 0-%d", c->name,
                            c->lines[i], lab[i], n_classes - 1);
        else
            ds->y[i] = (int32_t)lab[i], ds->ids[i] = (uint64_t)i;
    }
    free(lab);
    if (st != LETHE_OK) {
        lethe_dataset_free(ds);
        return st;
    }
    ds->n_classes = n_classes;
    *out = ds;
    return LETHE_OK;
}

static lethe_status load_sklearn_class(const char *data, const char *file, int n_classes,
                                       lethe_dataset **out)
{
    lethe_csv c = {0};
    lethe_status st = read_csv(data, file, ',', 0, strstr(file, "digits") ? 0 : 1, &c);
    if (st == LETHE_OK)
        st = from_label_table(&c, data, n_classes, out);
    lethe_csv_free(&c);
    if (st == LETHE_OK && !strcmp(data, "digits"))
        (*out)->c = 1, (*out)->h = 8, (*out)->w = 8;
    return st;
}

/* A regression table: feature columns [0, d) and the target in column d. */
static lethe_status from_target_table(const lethe_csv *c, const char *name, int d,
                                      lethe_dataset **out)
{
    long n = (long)c->n_rows;
    lethe_dataset *ds = lethe_dataset_alloc(name, LETHE_TASK_REGRESS, n, d, 1);
    if (!ds)
        return LETHE_ERR_NOMEM;
    lethe_status st = lethe_csv_to_float(c, 0, (size_t)d, ds->x);
    if (st == LETHE_OK)
        st = lethe_csv_to_float(c, (size_t)d, 1, ds->t);
    for (long i = 0; i < n; i++)
        ds->ids[i] = (uint64_t)i;
    if (st != LETHE_OK) {
        lethe_dataset_free(ds);
        return st;
    }
    *out = ds;
    return LETHE_OK;
}

static lethe_status load_boston(lethe_dataset **out)
{
    lethe_csv c = {0};
    lethe_status st = read_csv("boston", "boston_house_prices.csv", ',', 1, 1, &c);
    if (st == LETHE_OK)
        st = from_target_table(&c, "boston", 13, out);
    lethe_csv_free(&c);
    return st;
}

static lethe_status load_diabetes(lethe_dataset **out)
{
    lethe_csv cx = {0}, ct = {0};
    lethe_status st = read_csv("diabetes", "diabetes_data_raw.csv.gz", ' ', 0, 0, &cx);
    if (st == LETHE_OK)
        st = read_csv("diabetes", "diabetes_target.csv.gz", ' ', 0, 0, &ct);
    if (st == LETHE_OK && (cx.n_rows != ct.n_rows || cx.n_cols != 10 || ct.n_cols != 1))
        st = lethe_fail(LETHE_ERR_FORMAT, "%s, %s: expected N rows of 10 features and N targets",
                        cx.name, ct.name);
    lethe_dataset *ds = NULL;
    if (st == LETHE_OK && !(ds = lethe_dataset_alloc("diabetes", LETHE_TASK_REGRESS,
                                                      (long)cx.n_rows, 10, 1)))
        st = LETHE_ERR_NOMEM;
    if (st == LETHE_OK)
        st = lethe_csv_to_float(&cx, 0, 10, ds->x);
    if (st == LETHE_OK)
        st = lethe_csv_to_float(&ct, 0, 1, ds->t);
    lethe_csv_free(&cx);
    lethe_csv_free(&ct);
    if (st != LETHE_OK) {
        lethe_dataset_free(ds);
        return st;
    }
    for (long i = 0; i < ds->n; i++)
        ds->ids[i] = (uint64_t)i;
    *out = ds;
    return LETHE_OK;
}

/* CPS wages: numeric columns as they are, categorical ones one-hot over
 * their values in sorted order (so the layout does not depend on row
 * order). Target: the hourly wage. */
static const char *const cps_numeric[] = {"education", "south", "experience", "union",
                                          "age", "married"};
static const char *const cps_categorical[] = {"gender", "race", "occupation", "sector"};
#define CPS_MAX_LEVELS 8

static int cmp_str(const void *a, const void *b)
{
    return strcmp(*(const char *const *)a, *(const char *const *)b);
}

static lethe_status load_cps(lethe_dataset **out)
{
    lethe_csv c = {0};
    lethe_dataset *ds = NULL;
    const char *levels[4][CPS_MAX_LEVELS];
    int n_levels[4] = {0};
    size_t col;
    lethe_status st = read_csv("cps-wages", "data.csv", ',', 1, 0, &c);
    int d = 6;
    for (int k = 0; st == LETHE_OK && k < 4; k++) {
        if ((st = lethe_csv_column(&c, cps_categorical[k], &col)) != LETHE_OK)
            break;
        for (size_t r = 0; r < c.n_rows; r++) {
            const char *v = lethe_csv_cell(&c, r, col);
            int j = 0;
            while (j < n_levels[k] && strcmp(levels[k][j], v))
                j++;
            if (j < n_levels[k])
                continue;
            if (j == CPS_MAX_LEVELS) {
                st = lethe_fail(LETHE_ERR_FORMAT, "%s:%zu: column '%s' has over %d values",
                                c.name, c.lines[r], cps_categorical[k], CPS_MAX_LEVELS);
                break;
            }
            levels[k][n_levels[k]++] = v;
        }
        qsort(levels[k], (size_t)n_levels[k], sizeof levels[k][0], cmp_str);
        d += n_levels[k];
    }
    if (st == LETHE_OK &&
        !(ds = lethe_dataset_alloc("cps-wages", LETHE_TASK_REGRESS, (long)c.n_rows, d, 1)))
        st = LETHE_ERR_NOMEM;
    double *v = st == LETHE_OK ? malloc(c.n_rows * sizeof *v) : NULL;
    if (st == LETHE_OK && !v)
        st = lethe_fail(LETHE_ERR_NOMEM, "cps-wages: out of memory");
    for (int k = 0; st == LETHE_OK && k < 6; k++) {
        if ((st = lethe_csv_column(&c, cps_numeric[k], &col)) == LETHE_OK &&
            (st = lethe_csv_to_double(&c, col, 1, v)) == LETHE_OK)
            for (size_t r = 0; r < c.n_rows; r++)
                ds->x[r * (size_t)d + (size_t)k] = (float)v[r];
    }
    int base = 6;
    for (int k = 0; st == LETHE_OK && k < 4; k++) {
        lethe_csv_column(&c, cps_categorical[k], &col);
        for (size_t r = 0; r < c.n_rows; r++)
            for (int j = 0; j < n_levels[k]; j++)
                if (!strcmp(levels[k][j], lethe_csv_cell(&c, r, col)))
                    ds->x[r * (size_t)d + (size_t)(base + j)] = 1;
        base += n_levels[k];
    }
    if (st == LETHE_OK && (st = lethe_csv_column(&c, "wage", &col)) == LETHE_OK)
        st = lethe_csv_to_float(&c, col, 1, ds->t);
    free(v);
    lethe_csv_free(&c);
    if (st != LETHE_OK) {
        lethe_dataset_free(ds);
        return st;
    }
    for (long i = 0; i < ds->n; i++)
        ds->ids[i] = (uint64_t)i;
    *out = ds;
    return LETHE_OK;
}

/* US births as forecasting: sample i predicts day i's births from the
 * `window` days before it and day i's weekday (one-hot). Its id is i. */
static lethe_status load_births(int window, lethe_dataset **out)
{
    lethe_csv c = {0};
    size_t cb, cw;
    double *births = NULL, *dow = NULL;
    lethe_dataset *ds = NULL;
    lethe_status st = read_csv("us-births", "data.csv", ',', 1, 0, &c);
    if (st == LETHE_OK && (st = lethe_csv_column(&c, "births", &cb)) == LETHE_OK)
        st = lethe_csv_column(&c, "day_of_week", &cw);
    long days = (long)c.n_rows;
    if (st == LETHE_OK && days <= window + 1)
        st = lethe_fail(LETHE_ERR_INVALID, "us-births: %ld days cannot fill a window of %d",
                        days, window);
    if (st == LETHE_OK) {
        births = malloc((size_t)days * sizeof *births);
        dow = malloc((size_t)days * sizeof *dow);
        ds = lethe_dataset_alloc("us-births", LETHE_TASK_REGRESS, days - window, window + 7, 1);
        if (!births || !dow || !ds)
            st = lethe_fail(LETHE_ERR_NOMEM, "us-births: out of memory");
    }
    if (st == LETHE_OK)
        st = lethe_csv_to_double(&c, cb, 1, births);
    if (st == LETHE_OK)
        st = lethe_csv_to_double(&c, cw, 1, dow);
    for (long i = window; st == LETHE_OK && i < days; i++) {
        long s = i - window;
        float *x = ds->x + (size_t)s * (size_t)ds->d;
        for (int k = 0; k < window; k++)
            x[k] = (float)births[i - window + k];
        int wd = (int)dow[i];
        if (wd < 1 || wd > 7) {
            st = lethe_fail(LETHE_ERR_FORMAT, "%s:%zu: day_of_week %g is not 1-7", c.name,
                            c.lines[i], dow[i]);
            break;
        }
        x[window + wd - 1] = 1;
        ds->t[s] = (float)births[i];
        ds->ids[s] = (uint64_t)i;
    }
    free(births);
    free(dow);
    lethe_csv_free(&c);
    if (st != LETHE_OK) {
        lethe_dataset_free(ds);
        return st;
    }
    *out = ds;
    return LETHE_OK;
}

/* ---- splitting and scaling ---- */

/* The rows of all with (test ? in : not in) the test set, as a new set. */
static lethe_dataset *subset(const lethe_dataset *all, const char *name, const char *in_test)
{
    long n = 0;
    for (long i = 0; i < all->n; i++)
        n += in_test[i];
    lethe_dataset *ds = lethe_dataset_alloc(name, all->task, n, all->d, all->n_targets);
    if (!ds)
        return NULL;
    ds->c = all->c, ds->h = all->h, ds->w = all->w, ds->n_classes = all->n_classes;
    long j = 0;
    for (long i = 0; i < all->n; i++) {
        if (!in_test[i])
            continue;
        memcpy(ds->x + (size_t)j * (size_t)all->d, all->x + (size_t)i * (size_t)all->d,
               (size_t)all->d * sizeof(float));
        if (ds->y)
            ds->y[j] = all->y[i];
        if (ds->t)
            memcpy(ds->t + (size_t)j * (size_t)all->n_targets,
                   all->t + (size_t)i * (size_t)all->n_targets,
                   (size_t)all->n_targets * sizeof(float));
        ds->ids[j++] = all->ids[i];
    }
    return ds;
}

/* Split all into train and test: the last TEST_FRAC of the rows when
 * chronological, else a keyed hash of each id. */
static lethe_status split_test(const lethe_dataset *all, int chronological,
                               lethe_dataset **train, lethe_dataset **test)
{
    char *mark = malloc((size_t)all->n * 2);
    if (!mark)
        return lethe_fail(LETHE_ERR_NOMEM, "%s: out of memory", all->name);
    long first_test = all->n - (long)floor(TEST_FRAC * (double)all->n);
    for (long i = 0; i < all->n; i++) {
        int t = chronological ? i >= first_test
                              : lethe_id_uniform(0, TEST_STREAM, all->ids[i]) < TEST_FRAC;
        mark[i] = (char)t;
        mark[all->n + i] = (char)!t;
    }
    *test = subset(all, all->name, mark);
    *train = subset(all, all->name, mark + all->n);
    free(mark);
    if (!*test || !*train) {
        lethe_dataset_free(*test);
        lethe_dataset_free(*train);
        return LETHE_ERR_NOMEM;
    }
    return LETHE_OK;
}

/* Standardise features (and regression targets) with train's statistics. */
static void standardise(lethe_dataset *train, lethe_dataset *test)
{
    for (int j = 0; j < train->d; j++) {
        double s = 0, s2 = 0;
        for (long i = 0; i < train->n; i++) {
            double v = train->x[(size_t)i * (size_t)train->d + (size_t)j];
            s += v, s2 += v * v;
        }
        double mean = s / (double)train->n;
        double var = s2 / (double)train->n - mean * mean;
        double sd = var > 1e-12 ? sqrt(var) : 1;
        lethe_dataset *sets[2] = {train, test};
        for (int k = 0; k < 2; k++)
            for (long i = 0; i < sets[k]->n; i++) {
                float *v = &sets[k]->x[(size_t)i * (size_t)train->d + (size_t)j];
                *v = (float)((*v - mean) / sd);
            }
    }
    if (train->task != LETHE_TASK_REGRESS)
        return;
    double s = 0, s2 = 0;
    long m = train->n * train->n_targets;
    for (long i = 0; i < m; i++)
        s += train->t[i], s2 += (double)train->t[i] * train->t[i];
    double mean = s / (double)m, var = s2 / (double)m - mean * mean;
    double sd = var > 1e-12 ? sqrt(var) : 1;
    lethe_dataset *sets[2] = {train, test};
    for (int k = 0; k < 2; k++) {
        for (long i = 0; i < sets[k]->n * sets[k]->n_targets; i++)
            sets[k]->t[i] = (float)((sets[k]->t[i] - mean) / sd);
        sets[k]->t_shift = mean, sets[k]->t_scale = sd;
    }
}

lethe_status lethe_task_load(const char *name, const lethe_task_opts *opts,
                             lethe_dataset **train, lethe_dataset **test)
{
    const lethe_task_info *info;
    lethe_task_opts o = opts ? *opts : (lethe_task_opts){0};
    lethe_status st = lethe_task_find(name, &info);
    if (st != LETHE_OK)
        return st;
    if (o.limit < 0)
        return lethe_fail(LETHE_ERR_INVALID, "limit %ld is negative", o.limit);
    int window = o.window ? o.window : DEFAULT_WINDOW;
    if (window < 1 || window > 365)
        return lethe_fail(LETHE_ERR_INVALID, "window %d is not 1-365 days", window);
    *train = *test = NULL;
    lethe_dataset *all = NULL;
    int images = 0, chronological = 0;
    if (!strcmp(name, "fashion-mnist")) {
        st = load_idx_pair("train-images-idx3-ubyte.gz", "train-labels-idx1-ubyte.gz", name, 0,
                           train);
        if (st == LETHE_OK)
            st = load_idx_pair("t10k-images-idx3-ubyte.gz", "t10k-labels-idx1-ubyte.gz", name,
                               60000, test);
        images = 1;
    } else if (!strcmp(name, "digits")) {
        st = load_sklearn_class("digits", "digits.csv.gz", 10, &all);
        if (st == LETHE_OK)
            for (long i = 0; i < all->n * all->d; i++)
                all->x[i] /= 16.0f;
        images = 1;
    } else if (!strcmp(name, "iris")) {
        st = load_sklearn_class("iris", "iris.csv", 3, &all);
    } else if (!strcmp(name, "wine")) {
        st = load_sklearn_class("wine", "wine_data.csv", 3, &all);
    } else if (!strcmp(name, "breast-cancer")) {
        st = load_sklearn_class("breast-cancer", "breast_cancer.csv", 2, &all);
    } else if (!strcmp(name, "diabetes")) {
        st = load_diabetes(&all);
    } else if (!strcmp(name, "boston")) {
        st = load_boston(&all);
    } else if (!strcmp(name, "cps-wages")) {
        st = load_cps(&all);
    } else {
        st = load_births(window, &all);
        chronological = 1;
    }
    if (st == LETHE_OK && all)
        st = split_test(all, chronological, train, test);
    lethe_dataset_free(all);
    if (st == LETHE_OK && o.limit > 0 && o.limit < (*train)->n)
        (*train)->n = o.limit;
    if (st == LETHE_OK && (*train)->n == 0)
        st = lethe_fail(LETHE_ERR_INVALID, "%s: no training samples", name);
    if (st != LETHE_OK) {
        lethe_dataset_free(*train);
        lethe_dataset_free(*test);
        *train = *test = NULL;
        return st;
    }
    if (!images)
        standardise(*train, *test);
    return LETHE_OK;
}
