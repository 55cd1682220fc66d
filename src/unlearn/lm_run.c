/* An LM unlearning run (lethe/lm_unlearn.h, lethe_lm_run): a GPT run and
 * TOFU-layout question-answer files or raw text in, a new lethe GPT run
 * out. */
#include "lethe/lm_unlearn.h"

#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>

#include <cjson/cJSON.h>

#include "lethe/authors.h"
#include "lethe/corpus.h"
#include "lethe/fileio.h"
#include "lethe/gpt_hf.h"
#include "lethe/gpt_train.h"
#include "lethe/json.h"
#include "lethe/progress.h"
#include "lethe/run.h"
#include "lethe/rundir.h"
#include "lethe/safetensors.h"
#include "lethe/tofu.h"

static int file_exists(const char *path)
{
    struct stat sb;
    return stat(path, &sb) == 0 && S_ISREG(sb.st_mode);
}

static int ends_with(const char *s, const char *suffix)
{
    size_t n = strlen(s), k = strlen(suffix);
    return n >= k && !strcmp(s + n - k, suffix);
}

static const char *const format_names[] = {"auto", "qa", "text"};

const char *lethe_lm_format_name(lethe_lm_format f)
{
    return (unsigned)f < sizeof format_names / sizeof *format_names ? format_names[f] : NULL;
}

lethe_status lethe_lm_format_parse(const char *name, lethe_lm_format *f)
{
    for (unsigned i = 0; i < sizeof format_names / sizeof *format_names; i++)
        if (!strcmp(name, format_names[i])) {
            *f = (lethe_lm_format)i;
            return LETHE_OK;
        }
    return lethe_fail(LETHE_ERR_INVALID, "unknown data format '%s' (auto, qa or text)", name);
}

lethe_status lethe_lm_format_detect(const char *path, lethe_lm_format given,
                                    lethe_lm_format *out)
{
    *out = given;
    if (given != LETHE_LM_FORMAT_AUTO)
        return LETHE_OK;
    *out = LETHE_LM_FORMAT_TEXT;
    if (ends_with(path, ".txt"))
        return LETHE_OK;
    unsigned char *data;
    size_t len;
    lethe_status st = lethe_file_read_gz(path, &data, &len);
    if (st != LETHE_OK)
        return st;
    /* the first non-blank line */
    size_t a = len >= 3 && !memcmp(data, "\xEF\xBB\xBF", 3) ? 3 : 0;
    while (a < len && (data[a] == ' ' || data[a] == '\t' || data[a] == '\r' || data[a] == '\n'))
        a++;
    if (a == len) {
        free(data);
        return lethe_fail(LETHE_ERR_FORMAT, "%s: empty: neither texts nor question-answer pairs",
                          path);
    }
    const unsigned char *nl = a < len ? memchr(data + a, '\n', len - a) : NULL;
    size_t b = nl ? (size_t)(nl - data) : len;
    cJSON *j = a < b && data[a] != '[' ? cJSON_ParseWithLength((const char *)data + a, b - a)
                                       : NULL;
    int text = cJSON_IsString(j) ||
               (cJSON_IsObject(j) && cJSON_GetObjectItemCaseSensitive(j, "text") &&
                !cJSON_GetObjectItemCaseSensitive(j, "question"));
    cJSON_Delete(j);
    free(data);
    *out = text ? LETHE_LM_FORMAT_TEXT : LETHE_LM_FORMAT_QA;
    return LETHE_OK;
}

lethe_status lethe_lm_format_check(const lethe_lm_cfg *cfg, lethe_lm_format f)
{
    if (f == LETHE_LM_FORMAT_TEXT && lethe_lm_needs_idk(cfg))
        return lethe_fail(LETHE_ERR_INVALID, "%s reads a refusal as the alternate answer of "
                          "each forget question, and raw text has no questions: give "
                          "question-answer pairs, or use a method without refusals",
                          lethe_lm_method_name(cfg->method));
    return LETHE_OK;
}

/* The refusals of an idk file: one per non-blank line, plain text or a JSON
 * string. */
typedef struct lines {
    char **s;
    size_t n;
} lines;

static void lines_free(lines *l)
{
    for (size_t i = 0; i < l->n; i++)
        free(l->s[i]);
    free(l->s);
    l->s = NULL, l->n = 0;
}

static lethe_status read_idk(const char *path, lines *out)
{
    unsigned char *data;
    size_t len, cap = 0;
    *out = (lines){0};
    lethe_status st = lethe_file_read_gz(path, &data, &len);
    if (st != LETHE_OK)
        return st;
    size_t i = 0, line = 0;
    while (i < len && st == LETHE_OK) {
        size_t j = i;
        while (j < len && data[j] != '\n')
            j++;
        line++;
        size_t a = i, b = j;
        i = j + 1;
        while (a < b && (data[a] == ' ' || data[a] == '\t' || data[a] == '\r'))
            a++;
        while (b > a && (data[b - 1] == ' ' || data[b - 1] == '\t' || data[b - 1] == '\r'))
            b--;
        if (a == b)
            continue;
        char *s = NULL;
        if (data[a] == '"') {
            cJSON *j2 = NULL;
            st = lethe_json_parse_at((const char *)data + a, b - a, path, line, &j2);
            if (st == LETHE_OK && !cJSON_IsString(j2))
                st = lethe_fail(LETHE_ERR_FORMAT, "%s line %zu: expected a refusal (text or a "
                                "JSON string)", path, line);
            if (st == LETHE_OK && !(s = strdup(j2->valuestring)))
                st = lethe_fail(LETHE_ERR_NOMEM, "out of memory");
            cJSON_Delete(j2);
        } else if ((s = malloc(b - a + 1))) {
            memcpy(s, data + a, b - a);
            s[b - a] = 0;
        } else {
            st = lethe_fail(LETHE_ERR_NOMEM, "out of memory");
        }
        if (st != LETHE_OK)
            break;
        if (out->n == cap) {
            cap = cap ? 2 * cap : 64;
            char **t = realloc(out->s, sizeof *t * cap);
            if (!t) {
                free(s);
                st = lethe_fail(LETHE_ERR_NOMEM, "out of memory");
                break;
            }
            out->s = t;
        }
        out->s[out->n++] = s;
    }
    free(data);
    if (st == LETHE_OK && out->n == 0)
        st = lethe_fail(LETHE_ERR_FORMAT, "%s: no refusals (one per line expected)", path);
    if (st != LETHE_OK)
        lines_free(out);
    return st;
}

/* The pairs of a TOFU file as a set: questions and answers (answers
 * replaced by refusals when idk is given). */
static lethe_status load_set(const char *path, const lethe_gpt_dir *d, const lethe_tofu *qs,
                             const lines *idk, uint64_t seed, lethe_tofu *rows,
                             lethe_lm_data *out)
{
    lethe_status st = LETHE_OK;
    const lethe_tofu *src = qs;
    if (!qs) {
        if ((st = lethe_tofu_load(path, rows)) != LETHE_OK)
            return st;
        src = rows;
    }
    size_t n = src->n;
    const char **q = malloc(sizeof *q * (n ? n : 1)), **a = malloc(sizeof *a * (n ? n : 1));
    if (!q || !a) {
        st = lethe_fail(LETHE_ERR_NOMEM, "out of memory");
    } else {
        for (size_t i = 0; i < n; i++) {
            q[i] = src->rows[i].question;
            a[i] = idk ? idk->s[lethe_lm_idk_pick((long)i, (long)idk->n, seed)]
                       : src->rows[i].answer;
        }
        st = lethe_lm_data_build(d->tok, (int32_t)d->eot, d->model->cfg.n_positions, q, a, n,
                                 path, out);
    }
    free(q);
    free(a);
    return st;
}

/* Raw text as windows (lethe_lm_data_windows); *docs: the documents. */
static lethe_status load_text(const char *path, const lethe_gpt_dir *d, long *docs,
                              lethe_lm_data *out)
{
    if (!ends_with(path, ".jsonl") && !ends_with(path, ".txt"))
        return lethe_fail(LETHE_ERR_FORMAT, "%s: raw text is read from FILE.jsonl (a document "
                          "a line: {\"text\": ...} or a JSON string) or FILE.txt (one "
                          "document)", path);
    lethe_corpus *c;
    lethe_status st = lethe_corpus_load(path, 0, &c);
    if (st != LETHE_OK)
        return st;
    st = lethe_lm_data_windows(d->tok, (int32_t)d->eot, d->model->cfg.n_positions,
                               (const char *const *)c->texts, c->lens, c->n, path, out);
    *docs = (long)c->n;
    lethe_corpus_free(c);
    return st;
}

/* The mean NLL of the targets of a set under g (raw-text windows). */
static lethe_status set_nll(const lethe_gpt *g, const lethe_lm_set *s, double *out)
{
    enum { BATCH = 16 };
    lethe_gpt_ctx *x = lethe_gpt_ctx_new();
    if (!x)
        return lethe_fail(LETHE_ERR_NOMEM, "out of memory");
    lethe_status st = LETHE_OK;
    double sum = 0;
    long n = 0;
    for (long i0 = 0; i0 < s->n && st == LETHE_OK; i0 += BATCH) {
        int B = (int)(s->n - i0 < BATCH ? s->n - i0 : BATCH);
        size_t off = (size_t)i0 * (size_t)s->T;
        st = lethe_gpt_ctx_forward(x, g, s->tokens + off, s->targets + off, B, s->T);
        for (long k = 0; st == LETHE_OK && k < (long)B * s->T; k++)
            if (s->targets[off + (size_t)k] >= 0)
                sum -= x->logprobs[k], n++;
    }
    lethe_gpt_ctx_free(x);
    if (st == LETHE_OK)
        *out = n ? sum / (double)n : NAN;
    return st;
}

/* The mean token NLL of the pairs' answers under g. */
static lethe_status mean_nll(lethe_gpt *g, const lethe_gpt_dir *d, const lethe_tofu *t,
                             double *out)
{
    const char **q = malloc(sizeof *q * t->n), **a = malloc(sizeof *a * t->n);
    lethe_qa_score *s = malloc(sizeof *s * t->n);
    lethe_status st = LETHE_OK;
    if (!q || !a || !s) {
        st = lethe_fail(LETHE_ERR_NOMEM, "out of memory");
    } else {
        for (size_t i = 0; i < t->n; i++)
            q[i] = t->rows[i].question, a[i] = t->rows[i].answer;
        st = lethe_qa_score_answers(g, d->tok, (int32_t)d->eot, q, a, t->n, 16, s);
        if (st == LETHE_OK) {
            double sum = 0;
            long n = 0;
            for (size_t i = 0; i < t->n; i++)
                sum += s[i].nll_sum, n += s[i].n;
            *out = n ? sum / (double)n : NAN;
        }
    }
    free(q);
    free(a);
    free(s);
    return st;
}

static void add_num(cJSON *o, const char *key, double v)
{
    if (isfinite(v))
        cJSON_AddNumberToObject(o, key, v);
    else
        cJSON_AddNullToObject(o, key);
}

/* A file read: n rows (pairs or refusals) and its hash; for raw text
 * (docs >= 0) its docs documents as rows, its format and its n windows. */
static cJSON *file_item(const char *path, long n, long docs, const char *hash)
{
    cJSON *f = cJSON_CreateObject();
    cJSON_AddStringToObject(f, "path", path);
    cJSON_AddNumberToObject(f, "rows", (double)(docs >= 0 ? docs : n));
    cJSON_AddStringToObject(f, "hash", hash);
    if (docs >= 0) {
        cJSON_AddStringToObject(f, "format", "text");
        cJSON_AddNumberToObject(f, "windows", (double)n);
    }
    return f;
}

lethe_status lethe_lm_run_init(lethe_lm_run_cfg *rc, const char *name)
{
    memset(rc, 0, sizeof *rc);
    lethe_status st = lethe_lm_parse(name, &rc->cfg);
    if (st != LETHE_OK)
        return st;
    const lethe_lm_method_def *def = lethe_lm_method_def_of(rc->cfg.method);
    rc->name = name;
    lethe_lm_sched_defaults(&rc->sched);
    if (def->epochs > 0)
        rc->sched.epochs = def->epochs;
    rc->sched.label = def->name;
    return LETHE_OK;
}

void lethe_lm_overrides_init(lethe_lm_overrides *o)
{
    *o = (lethe_lm_overrides){.warmup = -1, .seed = -1, .lr = NAN, .wd = NAN, .clip = NAN,
                              .gamma = NAN, .alpha = NAN, .beta = NAN};
}

lethe_status lethe_lm_run_apply(lethe_lm_run_cfg *rc, const lethe_lm_overrides *o)
{
    lethe_lm_cfg *c = &rc->cfg;
    const lethe_lm_method_def *def = lethe_lm_method_def_of(c->method);
    if (o->retain_loss) {
        if (def->needs & LETHE_LM_FORGET_ONLY)
            return lethe_fail(LETHE_ERR_INVALID, "%s trains on the forget pairs only: it "
                              "takes no retain loss", def->name);
        if (lethe_lm_retain_parse(o->retain_loss, &c->retain) != LETHE_OK)
            return lethe_fail(LETHE_ERR_INVALID, "unknown retain loss '%s' (nll or kl; rmu: "
                              "embed)", o->retain_loss);
    }
    if (def->finish && o->lora_rank > 0)
        return lethe_fail(LETHE_ERR_INVALID, "%s combines whole models (a task vector over "
                          "every parameter): it trains no adapter", def->name);
    if (!isnan(o->gamma))
        c->gamma = o->gamma;
    if (!isnan(o->alpha))
        c->alpha = o->alpha;
    if (!isnan(o->beta))
        c->beta = o->beta;
    lethe_lm_sched *sc = &rc->sched;
    if (o->epochs > 0)
        sc->epochs = (int)o->epochs;
    if (o->batch > 0)
        sc->batch = (int)o->batch;
    if (!isnan(o->lr))
        sc->lr = (float)o->lr;
    if (!isnan(o->wd))
        sc->weight_decay = (float)o->wd;
    if (!isnan(o->clip))
        sc->clip = (float)o->clip;
    if (o->warmup >= 0)
        sc->warmup = o->warmup;
    if (o->seed >= 0)
        sc->seed = (uint64_t)o->seed;
    if (o->lora_rank > 0)
        rc->lora_rank = o->lora_rank;
    return LETHE_OK;
}

cJSON *lethe_lm_run_result_json(const lethe_lm_run_cfg *rc, const lethe_lm_run_result *res)
{
    cJSON *j = cJSON_CreateObject();
    if (!j)
        return NULL;
    cJSON_AddStringToObject(j, "run", rc->out);
    cJSON_AddStringToObject(j, "method", lethe_lm_method_name(rc->cfg.method));
    cJSON_AddNumberToObject(j, "forget", (double)res->n_forget);
    cJSON_AddNumberToObject(j, "retain", (double)res->n_retain);
    cJSON_AddNumberToObject(j, "steps", (double)res->steps);
    cJSON_AddNumberToObject(j, "first_loss", res->first_loss); /* NAN prints null */
    cJSON_AddNumberToObject(j, "last_loss", res->last_loss);
    cJSON_AddNumberToObject(j, "forget_nll_before", res->nll_before);
    cJSON_AddNumberToObject(j, "forget_nll_after", res->nll_after);
    cJSON_AddNumberToObject(j, "seconds", res->seconds);
    if (res->format == LETHE_LM_FORMAT_TEXT) {
        cJSON_AddStringToObject(j, "format", "text");
        cJSON_AddNumberToObject(j, "documents", (double)res->forget_docs);
    }
    return j;
}

/* The files the method reads, given where needed and only there. */
static lethe_status check_files(const lethe_lm_run_cfg *rc, const lethe_lm_method_def *def)
{
    const lethe_lm_cfg *c = &rc->cfg;
    if (def->needs & LETHE_LM_NOT_STORED)
        return lethe_fail(LETHE_ERR_UNSUPPORTED,
                          "%s is not a stored model (it adjusts the logits of a base and a "
                          "reinforced model at generation time): fine-tune the reinforced "
                          "model on the forget set (sft) and evaluate the pair with the WHP "
                          "adjustment (docs/lm-unlearning.md)", def->name);
    if (!rc->run || !rc->out || !rc->forget)
        return lethe_fail(LETHE_ERR_INVALID, "%s: the source run, the output directory and "
                          "the forget pairs are required", def->name);
    if (!lethe_lm_format_name(rc->format))
        return lethe_fail(LETHE_ERR_INVALID, "%s: data format %d is out of range", def->name,
                          (int)rc->format);
    if ((def->needs & LETHE_LM_FORGET_ONLY) && (rc->retain || rc->idk))
        return lethe_fail(LETHE_ERR_INVALID, "%s trains on the forget pairs only: it reads "
                          "no retain pairs or refusals", def->name);
    if (lethe_lm_needs_retain(c) && !rc->retain)
        return lethe_fail(LETHE_ERR_INVALID, "%s needs retain pairs for its retain term (%s, "
                          "alpha %g)", def->name, lethe_lm_retain_name(c->retain), c->alpha);
    /* raw text is refused before refusals are asked for (a forget file that
       cannot be read is reported where it is loaded) */
    lethe_lm_format ff;
    if (lethe_lm_needs_idk(c) &&
        lethe_lm_format_detect(rc->forget, rc->format, &ff) == LETHE_OK &&
        lethe_lm_format_check(c, ff) != LETHE_OK)
        return LETHE_ERR_INVALID;
    if (lethe_lm_needs_idk(c) && !rc->idk)
        return lethe_fail(LETHE_ERR_INVALID, "%s needs refusals (one per line, e.g. the "
                          "benchmark's idontknow.jsonl)", def->name);
    if (!lethe_lm_needs_idk(c) && rc->idk)
        return lethe_fail(LETHE_ERR_INVALID, "%s reads no refusals (idknll and idkdpo do)",
                          def->name);
    return LETHE_OK;
}

/* The hashes of the files read (16 hex digits, "" when not read), and the
 * documents of the raw-text ones (-1: pairs). */
typedef struct hashes {
    char parent[17], forget[17], retain[17], idk[17];
    long forget_docs, retain_docs;
} hashes;

/* config.json of the run. */
static cJSON *run_config(const lethe_lm_run_cfg *rc, const lethe_lm_sched *sc,
                         const lethe_gpt *g, const lethe_gpt_dir *d, const char *preset,
                         const char *mname, long per, const lethe_lora *lora, const hashes *h,
                         long n_idk, const lethe_lm_run_result *r)
{
    const lethe_lm_cfg *cfg = &rc->cfg;
    int use_retain = lethe_lm_needs_retain(cfg);
    const lethe_gpt_config *mc = &g->cfg;
    cJSON *config = cJSON_CreateObject();
    cJSON_AddStringToObject(config, "model", "gpt");
    cJSON_AddStringToObject(config, "preset", preset ? preset : "custom");
    cJSON_AddStringToObject(config, "format", "lethe");
    cJSON_AddStringToObject(config, "init", rc->run);
    cJSON_AddNumberToObject(config, "vocab_size", mc->vocab_size);
    cJSON_AddNumberToObject(config, "n_positions", mc->n_positions);
    cJSON_AddNumberToObject(config, "n_embd", mc->n_embd);
    cJSON_AddNumberToObject(config, "n_layer", mc->n_layer);
    cJSON_AddNumberToObject(config, "n_head", mc->n_head);
    cJSON_AddNumberToObject(config, "n_params", (double)g->n_params);
    cJSON_AddNumberToObject(config, "eot_id", (double)d->eot);
    cJSON_AddNumberToObject(config, "seed", (double)sc->seed);
    cJSON *u = cJSON_AddObjectToObject(config, "unlearn");
    cJSON_AddStringToObject(u, "method", mname);
    if (rc->name && strcmp(rc->name, mname))
        cJSON_AddStringToObject(u, "variant", rc->name);
    cJSON *s = cJSON_AddObjectToObject(u, "settings");
    cJSON_AddNumberToObject(s, "gamma", cfg->gamma);
    cJSON_AddNumberToObject(s, "alpha", cfg->alpha);
    cJSON_AddStringToObject(s, "retain_loss", use_retain ? lethe_lm_retain_name(cfg->retain)
                                                         : "none");
    cJSON_AddNumberToObject(s, "beta", cfg->beta);
    cJSON_AddNumberToObject(s, "beta2", cfg->beta2);
    cJSON_AddNumberToObject(s, "delta", cfg->delta);
    cJSON_AddNumberToObject(s, "ceu_ignore", cfg->ceu_ignore);
    cJSON_AddNumberToObject(s, "rmu_layer", cfg->rmu_layer);
    cJSON_AddNumberToObject(s, "rmu_blocks", cfg->rmu_blocks);
    cJSON_AddNumberToObject(s, "rmu_proj_only", cfg->rmu_proj_only);
    cJSON_AddNumberToObject(s, "steering", cfg->steering);
    cJSON_AddBoolToObject(u, "reference", r->reference);
    cJSON *sj = cJSON_AddObjectToObject(u, "schedule");
    cJSON_AddNumberToObject(sj, "epochs", sc->epochs);
    cJSON_AddNumberToObject(sj, "batch", sc->batch);
    cJSON_AddNumberToObject(sj, "lr", lethe_gpt_decimal(sc->lr));
    cJSON_AddNumberToObject(sj, "weight_decay", lethe_gpt_decimal(sc->weight_decay));
    cJSON_AddNumberToObject(sj, "warmup", (double)lethe_lm_sched_warmup(sc, per, per * sc->epochs));
    cJSON_AddStringToObject(sj, "sched", sc->constant ? "constant" : "linear");
    cJSON_AddNumberToObject(sj, "beta1", lethe_gpt_decimal(sc->beta1));
    cJSON_AddNumberToObject(sj, "beta2", lethe_gpt_decimal(sc->beta2));
    cJSON_AddNumberToObject(sj, "eps", lethe_gpt_decimal(sc->eps));
    cJSON_AddNumberToObject(sj, "clip", lethe_gpt_decimal(sc->clip));
    cJSON_AddNumberToObject(sj, "seed", (double)sc->seed);
    if (lora) {
        cJSON *lj = cJSON_AddObjectToObject(u, "lora");
        cJSON_AddNumberToObject(lj, "rank", lora->cfg.rank);
        cJSON_AddNumberToObject(lj, "alpha", lethe_gpt_decimal(lora->cfg.alpha));
        cJSON_AddNumberToObject(lj, "n_params", (double)lora->n_params);
        cJSON_AddBoolToObject(lj, "merged", 1);
    } else {
        cJSON_AddNullToObject(u, "lora");
    }
    cJSON_AddStringToObject(u, "parent", rc->run);
    cJSON_AddStringToObject(u, "parent_hash", h->parent);
    cJSON_AddItemToObject(u, "forget",
                          file_item(rc->forget, r->n_forget, h->forget_docs, h->forget));
    if (use_retain)
        cJSON_AddItemToObject(u, "retain",
                              file_item(rc->retain, r->n_retain, h->retain_docs, h->retain));
    else
        cJSON_AddNullToObject(u, "retain");
    if (rc->idk)
        cJSON_AddItemToObject(u, "idk", file_item(rc->idk, n_idk, -1, h->idk));
    else
        cJSON_AddNullToObject(u, "idk");
    cJSON_AddNumberToObject(u, "steps", (double)r->steps);
    add_num(u, "first_loss", r->first_loss);
    add_num(u, "last_loss", r->last_loss);
    add_num(u, "forget_nll_before", r->nll_before);
    add_num(u, "forget_nll_after", r->nll_after);
    return config;
}

/* Begin writing rc->out (lethe/rundir.h) against the run's inputs: the
 * source run and the bases it loads through, and the files read. */
static lethe_status begin_out(const lethe_lm_run_cfg *rc, lethe_rundir **rd)
{
    enum { MAX_SOURCES = 8 };
    char *src[MAX_SOURCES];
    size_t n = lethe_gpt_dir_sources(rc->run, src, MAX_SOURCES);
    const char *in[MAX_SOURCES + 3];
    for (size_t i = 0; i < n; i++)
        in[i] = src[i];
    in[n] = rc->forget, in[n + 1] = rc->retain, in[n + 2] = rc->idk;
    lethe_status st = lethe_rundir_begin(rc->out, rc->force, in, n + 3, rd);
    for (size_t i = 0; i < n; i++)
        free(src[i]);
    return st;
}

lethe_status lethe_lm_run(const lethe_lm_run_cfg *rc, lethe_lm_run_result *out)
{
    const lethe_lm_method_def *def = lethe_lm_method_def_of(rc->cfg.method);
    if (!def)
        return lethe_fail(LETHE_ERR_INVALID, "LM unlearning: method %d is out of range",
                          (int)rc->cfg.method);
    lethe_rundir *out_dir = NULL;
    lethe_lm_format ff = LETHE_LM_FORMAT_QA, rf = LETHE_LM_FORMAT_QA;
    lethe_status st = check_files(rc, def);
    if (st != LETHE_OK)
        return st;
    const lethe_lm_cfg *cfg = &rc->cfg;
    const char *mname = def->name;
    lethe_lm_sched sc = rc->sched;
    lethe_gpt_dir d = {.eot = -1};
    lethe_gpt *ref = NULL;
    lethe_lora *lora = NULL;
    lethe_tofu f_rows = {0}, r_rows = {0};
    lines idk = {0};
    lethe_lm_data fd = {0}, rd = {0}, id = {0};
    lethe_afile *log = NULL;
    cJSON *config = NULL, *parent_cfg = NULL;
    char *config_line = NULL;
    char path[4200], seed_str[32];
    hashes h = {"", "", "", "", -1, -1};
    int use_retain = lethe_lm_needs_retain(cfg);
    lethe_lm_run_result res = {0};
    res.nll_before = res.nll_after = NAN;

    st = lethe_gpt_dir_load(rc->run, 1, &d);
    if (st == LETHE_OK && (!d.tok || d.eot < 0))
        st = lethe_fail(LETHE_ERR_FORMAT, "%s: LM unlearning needs the run's tokenizer with an "
                        "<|endoftext|> token", rc->run);
    snprintf(path, sizeof path, "%s/model.safetensors", rc->run);
    if (!file_exists(path))
        snprintf(path, sizeof path, "%s/adapter_model.safetensors", rc->run);
    if (st == LETHE_OK)
        st = lethe_file_fnv1a(path, h.parent);
    snprintf(path, sizeof path, "%s/config.json", rc->run);
    if (st == LETHE_OK && file_exists(path) && lethe_json_read(path, &parent_cfg) != LETHE_OK)
        parent_cfg = NULL; /* already read by the loader; only the preset is wanted */
    if (st == LETHE_OK)
        st = lethe_lm_format_detect(rc->forget, rc->format, &ff);
    int ftext = ff == LETHE_LM_FORMAT_TEXT;
    if (st == LETHE_OK)
        st = ftext ? load_text(rc->forget, &d, &h.forget_docs, &fd)
                   : load_set(rc->forget, &d, NULL, NULL, 0, &f_rows, &fd);
    if (st == LETHE_OK)
        st = lethe_file_fnv1a(rc->forget, h.forget);
    if (st == LETHE_OK && use_retain)
        st = lethe_lm_format_detect(rc->retain, rc->format, &rf);
    if (st == LETHE_OK && use_retain)
        st = rf == LETHE_LM_FORMAT_TEXT ? load_text(rc->retain, &d, &h.retain_docs, &rd)
                                        : load_set(rc->retain, &d, NULL, NULL, 0, &r_rows, &rd);
    if (st == LETHE_OK && use_retain)
        st = lethe_file_fnv1a(rc->retain, h.retain);
    if (st == LETHE_OK && rc->idk)
        st = read_idk(rc->idk, &idk);
    if (st == LETHE_OK && rc->idk)
        st = load_set(rc->idk, &d, &f_rows, &idk, sc.seed, NULL, &id);
    if (st == LETHE_OK && rc->idk)
        st = lethe_file_fnv1a(rc->idk, h.idk);
    if (st == LETHE_OK) /* the inputs are read: the run directory */
        st = begin_out(rc, &out_dir);
    if (st != LETHE_OK)
        goto done;
    lethe_gpt *g = d.model;
    if (lethe_lm_needs_reference(cfg) && !(ref = lethe_lm_clone(g))) {
        st = LETHE_ERR_NOMEM;
        goto done;
    }
    res.reference = ref != NULL;
    if ((st = lethe_lm_check(cfg, g, ref)) != LETHE_OK)
        goto done;
    if (rc->lora_rank > 0) {
        lethe_lora_config lc;
        lethe_lora_config_defaults(&lc);
        lc.rank = rc->lora_rank;
        if (!(lora = lethe_lora_init(g, &lc, sc.seed))) {
            st = LETHE_ERR_INVALID;
            goto done;
        }
        sc.lora = lora;
    }
    st = ftext ? set_nll(g, &fd.set, &res.nll_before)
               : mean_nll(g, &d, &f_rows, &res.nll_before);
    if (st != LETHE_OK)
        goto done;
    snprintf(path, sizeof path, "%s/log.jsonl", rc->out);
    if (!(log = lethe_afile_open(path))) {
        st = LETHE_ERR_IO;
        goto done;
    }
    long per = lethe_lm_steps_per_epoch(fd.set.n, sc.batch);
    lethe_lm_result lr = {0};
    double t0 = lethe_now();
    st = lethe_lm_unlearn(g, ref, cfg, &fd.set, use_retain ? &rd.set : NULL,
                          rc->idk ? &id.set : NULL, &sc, log->fp, &lr);
    res.seconds = lethe_now() - t0;
    if (st != LETHE_OK)
        goto done;
    st = lethe_afile_commit(log);
    log = NULL;
    if (st != LETHE_OK)
        goto done;
    if (lora)
        lethe_lora_merge(lora, g);
    st = ftext ? set_nll(g, &fd.set, &res.nll_after)
               : mean_nll(g, &d, &f_rows, &res.nll_after);
    if (st != LETHE_OK)
        goto done;
    res.n_forget = fd.set.n;
    res.n_retain = use_retain ? rd.set.n : 0;
    res.format = ff;
    res.forget_docs = ftext ? h.forget_docs : 0;
    res.steps = lr.steps;
    res.first_loss = lr.first_loss;
    res.last_loss = lr.last_loss;

    const char *preset = cJSON_GetStringValue(cJSON_GetObjectItemCaseSensitive(parent_cfg,
                                                                                 "preset"));
    config = run_config(rc, &sc, g, &d, preset, mname, per, lora, &h, (long)idk.n, &res);
    if (!config || !(config_line = cJSON_PrintUnformatted(config))) {
        st = lethe_fail(LETHE_ERR_NOMEM, "out of memory");
        goto done;
    }
    snprintf(seed_str, sizeof seed_str, "%llu", (unsigned long long)sc.seed);
    lethe_st_meta meta[] = {{"model", "gpt"},
                            {"preset", (char *)(preset ? preset : "custom")},
                            {"config", config_line},
                            {"method", (char *)mname},
                            {"init", (char *)rc->run},
                            {"parent_hash", h.parent},
                            {"forget_hash", h.forget},
                            {"seed", seed_str}};
    snprintf(path, sizeof path, "%s/tokenizer.json", rc->out);
    st = lethe_tokenizer_save_json(d.tok, path);
    snprintf(path, sizeof path, "%s/model.safetensors", rc->out);
    if (st == LETHE_OK)
        st = lethe_gpt_save(g, path, meta, sizeof meta / sizeof meta[0]);
    if (st == LETHE_OK)
        st = lethe_json_write(rc->out, "config.json", config);
    if (st == LETHE_OK && out)
        *out = res;
done:
    lethe_afile_abort(log);
    lethe_rundir_end(out_dir, st);
    cJSON_Delete(config);
    cJSON_Delete(parent_cfg);
    free(config_line);
    lethe_lm_data_free(&fd);
    lethe_lm_data_free(&rd);
    lethe_lm_data_free(&id);
    lines_free(&idk);
    lethe_tofu_free(&f_rows);
    lethe_tofu_free(&r_rows);
    lethe_lora_free(lora);
    lethe_gpt_free(ref);
    lethe_gpt_dir_free(&d);
    return st;
}
