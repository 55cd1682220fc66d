/* Tasks, splits and run directories. */
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "../test.h"
#include "lethe/run.h"
#include "lethe/task.h"

/* n samples, ids 100 + 3i (not row numbers), label i % 4, target i. */
static lethe_dataset *toy(lethe_task task, long n)
{
    lethe_dataset *ds = lethe_dataset_alloc("toy", task, n, 2, 1);
    ds->n_classes = 4;
    for (long i = 0; i < n; i++) {
        ds->ids[i] = 100 + 3 * (uint64_t)i;
        ds->x[2 * i] = (float)i, ds->x[2 * i + 1] = 1;
        if (ds->y)
            ds->y[i] = (int32_t)(i % 4);
        if (ds->t)
            ds->t[i] = (float)i;
    }
    return ds;
}

TEST(split_random_is_keyed_by_id)
{
    lethe_dataset *ds = toy(LETHE_TASK_CLASSIFY, 20000);
    lethe_rows a, b, c;
    CHECK_OK(lethe_split_select(ds, "random:0.1", 0, &a));
    CHECK_MSG(labs(a.n - 2000) < 200, "random:0.1 took %ld of 20000", a.n);
    CHECK_OK(lethe_split_select(ds, "random:0.1", 1, &c));
    CHECK(c.n != a.n || memcmp(a.row, c.row, (size_t)a.n * sizeof(long)));
    /* Drop every other sample: membership of the rest is unchanged. */
    long *keep = malloc(sizeof(long) * 10000);
    for (long i = 0; i < 10000; i++)
        keep[i] = 2 * i;
    lethe_dataset *half = lethe_dataset_alloc("toy", LETHE_TASK_CLASSIFY, 10000, 2, 0);
    half->n_classes = 4;
    for (long i = 0; i < 10000; i++)
        half->ids[i] = ds->ids[keep[i]], half->y[i] = ds->y[keep[i]];
    CHECK_OK(lethe_split_select(half, "random:0.1", 0, &b));
    long j = 0, same = 1;
    for (long i = 0; i < a.n; i++)
        if (a.row[i] % 2 == 0)
            same &= j < b.n && b.row[j++] == a.row[i] / 2;
    CHECK(same && j == b.n);
    free(keep);
    lethe_rows_free(&a);
    lethe_rows_free(&b);
    lethe_rows_free(&c);
    lethe_dataset_free(ds);
    lethe_dataset_free(half);
}

TEST(split_class_range_and_errors)
{
    lethe_dataset *ds = toy(LETHE_TASK_CLASSIFY, 100), *rg = toy(LETHE_TASK_REGRESS, 100);
    lethe_rows r;
    CHECK_OK(lethe_split_select(ds, "class:1,3", 0, &r));
    CHECK(r.n == 50);
    int ok = 1;
    for (long i = 0; i < r.n; i++)
        ok &= ds->y[r.row[i]] % 2 == 1 && (i == 0 || r.row[i] > r.row[i - 1]);
    CHECK(ok);
    lethe_rows_free(&r);
    rg->t_shift = 10, rg->t_scale = 2; /* data units: 10 + 2 t */
    CHECK_OK(lethe_split_select(rg, "range:20:30", 0, &r));
    CHECK(r.n == 5 && r.row[0] == 5 && r.row[4] == 9);
    lethe_rows_free(&r);
    const char *bad[] = {"class:4", "class:", "class:1,x", "random:0", "random:1.5",
                         "random:abc", "range:1:2"};
    for (size_t i = 0; i < sizeof bad / sizeof bad[0]; i++)
        CHECK_STATUS(lethe_split_select(ds, bad[i], 0, &r), LETHE_ERR_INVALID);
    CHECK_STATUS(lethe_split_select(rg, "range:5:1", 0, &r), LETHE_ERR_INVALID);
    CHECK_STATUS(lethe_split_select(rg, "range:1000:2000", 0, &r), LETHE_ERR_INVALID);
    CHECK(strstr(lethe_error_detail(), "selects no sample"));
    CHECK_STATUS(lethe_split_select(rg, "class:1", 0, &r), LETHE_ERR_INVALID);
    CHECK_STATUS(lethe_split_select(ds, "/no/such/file", 0, &r), LETHE_ERR_IO);
    lethe_dataset_free(ds);
    lethe_dataset_free(rg);
}

TEST(split_id_file)
{
    lethe_dataset *ds = toy(LETHE_TASK_CLASSIFY, 50);
    char path[] = "/tmp/lethe_ids_XXXXXX";
    int fd = mkstemp(path);
    FILE *f = fdopen(fd, "w");
    fprintf(f, "# forget these\n130\n 103 \n\n130\n100\r\n");
    fclose(f);
    lethe_rows r;
    CHECK_OK(lethe_split_select(ds, path, 0, &r));
    CHECK(r.n == 3 && r.row[0] == 0 && r.row[1] == 1 && r.row[2] == 10);
    lethe_rows_free(&r);
    f = fopen(path, "w");
    fprintf(f, "100\n101\n");
    fclose(f);
    CHECK_STATUS(lethe_split_select(ds, path, 0, &r), LETHE_ERR_INVALID);
    CHECK(strstr(lethe_error_detail(), ":2: id 101 is not in"));
    f = fopen(path, "w");
    fprintf(f, "100\n-3\n");
    fclose(f);
    CHECK_STATUS(lethe_split_select(ds, path, 0, &r), LETHE_ERR_FORMAT);
    unlink(path);
    lethe_dataset_free(ds);
}

TEST(rows_hash_depends_on_ids_only)
{
    lethe_dataset *ds = toy(LETHE_TASK_CLASSIFY, 10);
    lethe_rows a = {2, (long[]){1, 4}}, b = {2, (long[]){1, 5}};
    char ha[17], hb[17], hc[17], hd[17];
    lethe_rows_hash(ds, &a, ha);
    lethe_rows_hash(ds, &b, hb);
    CHECK(strlen(ha) == 16 && strcmp(ha, hb));
    lethe_rows_hash(ds, NULL, hc);
    ds->x[3] += 1;
    lethe_rows_hash(ds, NULL, hd);
    CHECK(strcmp(hc, hd));
    lethe_rows_hash(ds, &a, hb);
    CHECK(!strcmp(ha, hb));
    lethe_dataset_free(ds);
}

TEST(task_unknown_and_registry)
{
    lethe_dataset *tr, *te;
    CHECK_STATUS(lethe_task_load("no-such", NULL, &tr, &te), LETHE_ERR_NOT_FOUND);
    CHECK(strstr(lethe_error_detail(), "fashion-mnist"));
    for (size_t i = 0; i < lethe_tasks_count(); i++) {
        const lethe_task_info *t = lethe_tasks_at(i), *u;
        CHECK_OK(lethe_task_find(t->name, &u));
        CHECK(u == t);
    }
}

/* Tabular tasks from Debian's python3-sklearn (installed by scripts/deps.sh):
 * a fixed 80/20 split, features standardised on the training part. */
TEST(task_boston_split_and_scaling)
{
    lethe_dataset *tr, *te;
    CHECK_OK(lethe_task_load("boston", NULL, &tr, &te));
    if (!tr)
        return;
    CHECK(tr->n + te->n == 506 && te->n > 70 && te->n < 130 && tr->d == 13);
    double m = 0, v = 0;
    for (long i = 0; i < tr->n; i++)
        m += tr->x[i * 13 + 5];
    m /= (double)tr->n;
    for (long i = 0; i < tr->n; i++)
        v += (tr->x[i * 13 + 5] - m) * (tr->x[i * 13 + 5] - m);
    CHECK_CLOSE(m, 0, 0, 1e-5);
    CHECK_CLOSE(v / (double)tr->n, 1, 1e-4, 0);
    /* The first tract (id 0) has MEDV 24.0 wherever it landed. */
    long r = lethe_dataset_find(tr, 0);
    lethe_dataset *at = tr;
    if (r < 0)
        r = lethe_dataset_find(te, 0), at = te;
    CHECK(r >= 0);
    CHECK_CLOSE(at->t[r] * at->t_scale + at->t_shift, 24.0, 1e-5, 0);
    lethe_task_opts o = {.limit = 50};
    lethe_dataset *tr2, *te2;
    CHECK_OK(lethe_task_load("boston", &o, &tr2, &te2));
    CHECK(tr2->n == 50 && te2->n == te->n && tr2->ids[7] == tr->ids[7]);
    lethe_dataset_free(tr);
    lethe_dataset_free(te);
    lethe_dataset_free(tr2);
    lethe_dataset_free(te2);
}

TEST(run_save_load_and_architecture_check)
{
    lethe_net *a = lethe_net_init("in=2;linear=3;relu;linear=4");
    lethe_net *b = lethe_net_init("in=2;linear=5;relu;linear=4");
    lethe_net_init_params(a, 7);
    char dir[] = "/tmp/lethe_run_XXXXXX";
    CHECK(mkdtemp(dir));
    cJSON *cfg = cJSON_CreateObject();
    cJSON_AddStringToObject(cfg, "data", "iris");
    cJSON_AddNumberToObject(cfg, "seed", 7);
    const char *meta[] = {"method", "train"};
    CHECK_OK(lethe_run_save(dir, a, cfg, meta, 1));
    lethe_run *run;
    CHECK_OK(lethe_run_load(dir, &run));
    CHECK(!strcmp(run->task, "iris") && run->seed == 7);
    CHECK(!strcmp(run->net->spec, a->spec) && run->net->n_params == a->n_params);
    CHECK(!memcmp(run->net->params, a->params, (size_t)a->n_params * sizeof(float)));
    char path[256];
    snprintf(path, sizeof path, "%s/model.safetensors", dir);
    CHECK_STATUS(lethe_net_load_params(b, path), LETHE_ERR_FORMAT);
    CHECK(strstr(lethe_error_detail(), "architecture"));
    /* Predictions agree with a plain forward and do not depend on the rows'
     * batching. */
    lethe_dataset *ds = toy(LETHE_TASK_CLASSIFY, 600);
    float *p = malloc(sizeof(float) * 600 * 4);
    CHECK_OK(lethe_predict(run->net, ds, NULL, p));
    const float *y = lethe_net_forward(a, ds->x + 2 * 599, 1, 0, NULL, 0);
    CHECK(!memcmp(y, p + 4 * 599, 4 * sizeof(float)));
    lethe_scores s;
    CHECK_OK(lethe_score(run->net, ds, NULL, &s));
    long correct = 0;
    for (long i = 0; i < 600; i++) {
        int best = 0;
        for (int k = 1; k < 4; k++)
            best = p[4 * i + k] > p[4 * i + best] ? k : best;
        correct += best == ds->y[i];
    }
    CHECK_CLOSE(s.accuracy, 100.0 * (double)correct / 600, 1e-12, 0);
    free(p);
    lethe_dataset_free(ds);
    lethe_run_free(run);
    cJSON_Delete(cfg);
    lethe_net_free(a);
    lethe_net_free(b);
    unlink(path);
    snprintf(path, sizeof path, "%s/config.json", dir);
    unlink(path);
    rmdir(dir);
}
