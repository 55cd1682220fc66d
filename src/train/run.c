/* Run directories: model files with their architecture, config.json, and
 * batched evaluation-mode prediction. */
#include "lethe/run.h"
#include "lethe/fileio.h"
#include "lethe/json.h"
#include "lethe/safetensors.h"

#include <errno.h>
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>

#define PREDICT_BATCH 256
#define MAX_META 32

/* The shape of layer i's weight (rank 2 or 4) into shape[]; 0 if none. */
static size_t weight_shape(const lethe_layer *l, size_t shape[4])
{
    if (l->kind == LETHE_LAYER_LINEAR) {
        shape[0] = (size_t)l->out_c;
        shape[1] = (size_t)l->in_c * (size_t)l->in_h * (size_t)l->in_w;
        return 2;
    }
    if (l->kind == LETHE_LAYER_CONV) {
        shape[0] = (size_t)l->out_c, shape[1] = (size_t)l->in_c, shape[2] = shape[3] = 3;
        return 4;
    }
    return 0;
}

lethe_status lethe_net_save(const lethe_net *net, const char *path, const char *const *meta_kv,
                            size_t n_meta)
{
    lethe_st_f32 t[2 * LETHE_NET_MAX_LAYERS];
    size_t shapes[LETHE_NET_MAX_LAYERS][5];
    char names[2 * LETHE_NET_MAX_LAYERS][32];
    lethe_st_meta meta[MAX_META + 1];
    size_t n = 0;
    if (n_meta > MAX_META)
        return lethe_fail(LETHE_ERR_INVALID, "%s: more than %d metadata entries", path, MAX_META);
    for (int i = 0; i < net->n_layers; i++) {
        const lethe_layer *l = &net->layers[i];
        size_t rank = weight_shape(l, shapes[i]);
        if (!rank)
            continue;
        shapes[i][4] = (size_t)l->b_len;
        snprintf(names[n], sizeof names[n], "layers.%d.weight", i);
        t[n] = (lethe_st_f32){names[n], rank, shapes[i], net->params + l->w_off};
        n++;
        snprintf(names[n], sizeof names[n], "layers.%d.bias", i);
        t[n] = (lethe_st_f32){names[n], 1, &shapes[i][4], net->params + l->b_off};
        n++;
    }
    meta[0] = (lethe_st_meta){"spec", (char *)net->spec};
    for (size_t i = 0; i < n_meta; i++)
        meta[i + 1] = (lethe_st_meta){(char *)meta_kv[2 * i], (char *)meta_kv[2 * i + 1]};
    return lethe_safetensors_write(path, t, n, meta, n_meta + 1);
}

lethe_status lethe_net_load_params(lethe_net *net, const char *path)
{
    lethe_safetensors *st;
    lethe_status rc = lethe_safetensors_open(path, &st);
    if (rc != LETHE_OK)
        return rc;
    const char *spec = lethe_safetensors_meta(st, "spec");
    if (spec && strcmp(spec, net->spec)) {
        rc = lethe_fail(LETHE_ERR_FORMAT, "%s: a model of architecture '%s', expected '%s'",
                        path, spec, net->spec);
        goto done;
    }
    size_t expected = 0;
    for (int i = 0; i < net->n_layers && rc == LETHE_OK; i++) {
        const lethe_layer *l = &net->layers[i];
        size_t shape[4], bshape = (size_t)l->b_len, rank = weight_shape(l, shape);
        if (!rank)
            continue;
        char name[32];
        snprintf(name, sizeof name, "layers.%d.weight", i);
        rc = lethe_safetensors_load_f32(st, name, rank, shape, net->params + l->w_off);
        snprintf(name, sizeof name, "layers.%d.bias", i);
        if (rc == LETHE_OK)
            rc = lethe_safetensors_load_f32(st, name, 1, &bshape, net->params + l->b_off);
        expected += 2;
    }
    size_t n_model = 0; /* tensors other than an exact model's "linear.*" state */
    for (size_t i = 0; i < st->n_tensors; i++)
        n_model += strncmp(st->tensors[i].name, "linear.", 7) != 0;
    if (rc == LETHE_OK && n_model != expected)
        rc = lethe_fail(LETHE_ERR_FORMAT, "%s: %zu tensors, but architecture '%s' has %zu", path,
                        n_model, net->spec, expected);
    if (rc != LETHE_OK && rc != LETHE_ERR_NOMEM)
        rc = lethe_fail(LETHE_ERR_FORMAT, "%s (is it a model of architecture '%s'?)",
                        lethe_error_detail(), net->spec);
done:
    lethe_safetensors_free(st);
    return rc;
}

lethe_status lethe_net_load(const char *path, lethe_net **out)
{
    lethe_safetensors *st;
    *out = NULL;
    lethe_status rc = lethe_safetensors_open(path, &st);
    if (rc != LETHE_OK)
        return rc;
    const char *spec = lethe_safetensors_meta(st, "spec");
    lethe_net *net = spec ? lethe_net_init(spec) : NULL;
    if (!spec)
        rc = lethe_fail(LETHE_ERR_FORMAT, "%s: no \"spec\" in the metadata; not a lethe model",
                        path);
    else if (!net)
        rc = lethe_fail(LETHE_ERR_FORMAT, "%s: bad architecture in the metadata: %s", path,
                        lethe_error_detail());
    lethe_safetensors_free(st);
    if (rc == LETHE_OK)
        rc = lethe_net_load_params(net, path);
    if (rc != LETHE_OK) {
        lethe_net_free(net);
        return rc;
    }
    *out = net;
    return LETHE_OK;
}

lethe_status lethe_run_mkdir(const char *dir)
{
    char buf[4096];
    if (snprintf(buf, sizeof buf, "%s", dir) >= (int)sizeof buf)
        return lethe_fail(LETHE_ERR_INVALID, "run directory name too long");
    for (char *p = buf + 1;; p++) {
        if (*p != '/' && *p)
            continue;
        char c = *p;
        *p = 0;
        if (mkdir(buf, 0777) != 0 && errno != EEXIST)
            return lethe_fail(LETHE_ERR_IO, "%s: cannot create directory: %s", buf,
                              strerror(errno));
        *p = c;
        if (!c)
            break;
    }
    struct stat sb;
    if (stat(dir, &sb) != 0 || !S_ISDIR(sb.st_mode))
        return lethe_fail(LETHE_ERR_IO, "%s: not a directory", dir);
    return LETHE_OK;
}

void lethe_run_config_data(cJSON *j, uint64_t seed, long limit, long window,
                           const char *exclude, uint64_t split_seed, const char *data_hash,
                           const char *exclude_hash, long n_train)
{
    cJSON_AddNumberToObject(j, "seed", (double)seed);
    cJSON_AddNumberToObject(j, "limit", (double)limit);
    cJSON_AddNumberToObject(j, "window", (double)window);
    if (exclude)
        cJSON_AddStringToObject(j, "exclude", exclude);
    else
        cJSON_AddNullToObject(j, "exclude");
    cJSON_AddNumberToObject(j, "split_seed", (double)split_seed);
    cJSON_AddStringToObject(j, "data_hash", data_hash);
    cJSON_AddStringToObject(j, "exclude_hash", exclude_hash);
    cJSON_AddNumberToObject(j, "n_train", (double)n_train);
}

lethe_status lethe_run_save(const char *dir, const lethe_net *net, const cJSON *config,
                            const char *const *meta_kv, size_t n_meta)
{
    char path[4200];
    const char *kv[2 * MAX_META];
    if (n_meta + 1 > MAX_META)
        return lethe_fail(LETHE_ERR_INVALID, "%s: too many metadata entries", dir);
    lethe_status st = lethe_run_mkdir(dir);
    if (st != LETHE_OK)
        return st;
    char *line = cJSON_PrintUnformatted(config), *pretty = cJSON_Print(config);
    if (!line || !pretty) {
        free(line), free(pretty);
        return lethe_fail(LETHE_ERR_NOMEM, "out of memory");
    }
    if (n_meta)
        memcpy(kv, meta_kv, 2 * n_meta * sizeof *kv);
    kv[2 * n_meta] = "config", kv[2 * n_meta + 1] = line;
    snprintf(path, sizeof path, "%s/model.safetensors", dir);
    st = lethe_net_save(net, path, kv, n_meta + 1);
    if (st == LETHE_OK) {
        size_t len = strlen(pretty);
        pretty[len] = '\n'; /* replaces the NUL; written without it */
        snprintf(path, sizeof path, "%s/config.json", dir);
        st = lethe_file_write_atomic(path, pretty, len + 1);
    }
    free(line);
    free(pretty);
    return st;
}

lethe_status lethe_run_load(const char *dir, lethe_run **out)
{
    char path[4200];
    *out = NULL;
    lethe_run *run = calloc(1, sizeof *run);
    if (!run)
        return lethe_fail(LETHE_ERR_NOMEM, "out of memory");
    snprintf(run->dir, sizeof run->dir, "%s", dir);
    snprintf(path, sizeof path, "%s/config.json", dir);
    struct stat sb;
    lethe_status st = stat(dir, &sb) != 0 || !S_ISDIR(sb.st_mode)
                          ? lethe_fail(LETHE_ERR_IO, "%s: not a run directory", dir)
                          : lethe_json_read(path, &run->config);
    const char *task = NULL;
    long long limit = 0, window = 0, seed = 0;
    if (st == LETHE_OK)
        st = lethe_json_get_string(run->config, "data", path, &task);
    if (st == LETHE_OK)
        st = lethe_json_opt_int(run->config, "limit", path, 0, &limit);
    if (st == LETHE_OK)
        st = lethe_json_opt_int(run->config, "window", path, 0, &window);
    if (st == LETHE_OK)
        st = lethe_json_opt_int(run->config, "seed", path, 0, &seed);
    if (st == LETHE_OK) {
        snprintf(run->task, sizeof run->task, "%s", task);
        run->opts.limit = (long)limit, run->opts.window = (int)window;
        run->seed = (uint64_t)seed;
        snprintf(path, sizeof path, "%s/model.safetensors", dir);
        st = lethe_net_load(path, &run->net);
    }
    if (st != LETHE_OK) {
        lethe_run_free(run);
        return st;
    }
    *out = run;
    return LETHE_OK;
}

void lethe_run_free(lethe_run *run)
{
    if (!run)
        return;
    lethe_net_free(run->net);
    cJSON_Delete(run->config);
    free(run);
}

lethe_status lethe_run_data(const lethe_run *run, lethe_dataset **train, lethe_dataset **test)
{
    lethe_status st = lethe_task_load(run->task, &run->opts, train, test);
    if (st == LETHE_OK && ((*train)->d != run->net->n_in)) {
        st = lethe_fail(LETHE_ERR_FORMAT, "%s: the model takes %ld features, data set %s has %d",
                        run->dir, run->net->n_in, run->task, (*train)->d);
        lethe_dataset_free(*train);
        lethe_dataset_free(*test);
        *train = *test = NULL;
    }
    return st;
}

lethe_status lethe_predict(lethe_net *net, const lethe_dataset *ds, const lethe_rows *rows,
                           float *out)
{
    if (ds->d != net->n_in)
        return lethe_fail(LETHE_ERR_INVALID, "%s has %d features; the model takes %ld", ds->name,
                          ds->d, net->n_in);
    long n = rows ? rows->n : ds->n;
    lethe_status st = lethe_net_reserve(net, PREDICT_BATCH);
    for (long i = 0; st == LETHE_OK && i < n; i += PREDICT_BATCH) {
        int B = (int)(n - i < PREDICT_BATCH ? n - i : PREDICT_BATCH);
        for (int b = 0; b < B; b++) {
            long r = rows ? rows->row[i + b] : i + b;
            memcpy(net->bx + (size_t)b * (size_t)ds->d, ds->x + (size_t)r * (size_t)ds->d,
                   (size_t)ds->d * sizeof(float));
        }
        const float *y = lethe_net_forward(net, net->bx, B, 0, NULL, 0);
        if (!y)
            return LETHE_ERR_NOMEM;
        memcpy(out + (size_t)i * (size_t)net->n_out, y,
               (size_t)B * (size_t)net->n_out * sizeof(float));
    }
    return st;
}

lethe_status lethe_score(lethe_net *net, const lethe_dataset *ds, const lethe_rows *rows,
                         lethe_scores *out)
{
    long n = rows ? rows->n : ds->n;
    *out = (lethe_scores){n, NAN, NAN, NAN};
    if (n == 0)
        return LETHE_OK;
    float *y = malloc((size_t)n * (size_t)net->n_out * sizeof *y);
    if (!y)
        return lethe_fail(LETHE_ERR_NOMEM, "out of memory for %ld predictions", n);
    lethe_status st = lethe_predict(net, ds, rows, y);
    long correct = 0;
    double l1 = 0, mse = 0;
    for (long i = 0; st == LETHE_OK && i < n; i++) {
        long r = rows ? rows->row[i] : i;
        const float *p = y + (size_t)i * (size_t)net->n_out;
        if (ds->task == LETHE_TASK_CLASSIFY) {
            int best = 0;
            for (int k = 1; k < net->n_out; k++)
                if (p[k] > p[best])
                    best = k;
            correct += best == ds->y[r];
            continue;
        }
        for (int k = 0; k < ds->n_targets; k++) {
            double e = ((double)p[k] - ds->t[(size_t)r * (size_t)ds->n_targets + (size_t)k]) *
                       ds->t_scale;
            l1 += fabs(e), mse += e * e;
        }
    }
    free(y);
    if (ds->task == LETHE_TASK_CLASSIFY) {
        out->accuracy = 100.0 * (double)correct / (double)n;
    } else {
        out->l1 = l1 / ((double)n * ds->n_targets);
        out->mse = mse / ((double)n * ds->n_targets);
    }
    return st;
}
