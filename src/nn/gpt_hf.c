/* GPT-2 checkpoints as directories: lethe run directories and Hugging Face
 * GPT-2 directories loaded the same way, and Hugging Face's layout written
 * (include/lethe/gpt_hf.h). */
#include "lethe/gpt_hf.h"
#include "lethe/gpt_quant.h"

#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include "lethe/fileio.h"
#include "lethe/json.h"
#include "lethe/lora.h"

#define EOT_TEXT "<|endoftext|>"
#define PREFIX "transformer."
#define PATH_CAP 4200

/* The five fields, in the order of lethe_gpt_config and of the HAVE bits. */
enum { F_VOCAB, F_POS, F_EMBD, F_LAYER, F_HEAD, N_FIELDS };
static const char *const field_name[N_FIELDS] = {"vocab_size", "n_positions", "n_embd",
                                                 "n_layer", "n_head"};

static int get_field(const lethe_gpt_config *c, int k)
{
    const int v[N_FIELDS] = {c->vocab_size, c->n_positions, c->n_embd, c->n_layer, c->n_head};
    return v[k];
}

static void set_field(lethe_gpt_config *c, int k, int v)
{
    int *p[N_FIELDS] = {&c->vocab_size, &c->n_positions, &c->n_embd, &c->n_layer, &c->n_head};
    *p[k] = v;
}

static int file_exists(const char *path)
{
    return access(path, F_OK) == 0;
}

/* ---- config.json ------------------------------------------------------ */

static int is_true(const cJSON *j, const char *key)
{
    return cJSON_IsTrue(cJSON_GetObjectItemCaseSensitive(j, key));
}

static int is_false(const cJSON *j, const char *key)
{
    return cJSON_IsFalse(cJSON_GetObjectItemCaseSensitive(j, key));
}

/* Settings lethe cannot reproduce. */
static lethe_status check_settings(const cJSON *j, const char *path, const lethe_gpt_config *c,
                                   unsigned have)
{
    const cJSON *v = cJSON_GetObjectItemCaseSensitive(j, "model_type");
    if (cJSON_IsString(v) && strcmp(v->valuestring, "gpt2"))
        return lethe_fail(LETHE_ERR_UNSUPPORTED, "%s: model_type '%.40s' is not GPT-2 (lethe "
                          "loads GPT-2 models only)", path, v->valuestring);
    v = cJSON_GetObjectItemCaseSensitive(j, "activation_function");
    if (cJSON_IsString(v) && strcmp(v->valuestring, "gelu_new") &&
        strcmp(v->valuestring, "gelu_pytorch_tanh") && strcmp(v->valuestring, "gelu_fast"))
        return lethe_fail(LETHE_ERR_UNSUPPORTED, "%s: activation_function '%.40s' is not "
                          "supported (lethe's GPT-2 uses GELU's tanh form, \"gelu_new\")", path,
                          v->valuestring);
    v = cJSON_GetObjectItemCaseSensitive(j, "n_inner");
    if (cJSON_IsNumber(v) && (have & LETHE_GPT_HAVE_EMBD) && v->valuedouble != 4.0 * c->n_embd)
        return lethe_fail(LETHE_ERR_UNSUPPORTED, "%s: n_inner is %g; lethe's MLP is 4 n_embd "
                          "= %d wide", path, v->valuedouble, 4 * c->n_embd);
    v = cJSON_GetObjectItemCaseSensitive(j, "layer_norm_epsilon");
    if (cJSON_IsNumber(v) && fabs(v->valuedouble - 1e-5) > 1e-9)
        return lethe_fail(LETHE_ERR_UNSUPPORTED, "%s: layer_norm_epsilon is %g; lethe's is "
                          "1e-5", path, v->valuedouble);
    if (is_true(j, "scale_attn_by_inverse_layer_idx"))
        return lethe_fail(LETHE_ERR_UNSUPPORTED, "%s: scale_attn_by_inverse_layer_idx is not "
                          "supported", path);
    if (is_false(j, "scale_attn_weights"))
        return lethe_fail(LETHE_ERR_UNSUPPORTED, "%s: scale_attn_weights false is not "
                          "supported", path);
    return LETHE_OK;
}

/* lethe_gpt_read_config, also telling whether the file names a model_type. */
static lethe_status read_config(const char *path, lethe_gpt_config *cfg, unsigned *have,
                                int *hf)
{
    static const char *const keys[N_FIELDS][2] = {
        {"vocab_size", NULL}, {"n_positions", "n_ctx"}, {"n_embd", NULL},
        {"n_layer", NULL},    {"n_head", NULL}};
    *cfg = (lethe_gpt_config){0};
    *have = 0;
    cJSON *j = NULL;
    lethe_status st = lethe_json_read(path, &j);
    if (st != LETHE_OK)
        return st;
    if (!cJSON_IsObject(j)) {
        st = lethe_fail(LETHE_ERR_FORMAT, "%s: expected a JSON object, got %s", path,
                        lethe_json_type_name(j));
        goto done;
    }
    for (int k = 0; k < N_FIELDS; k++) {
        for (int a = 0; a < 2 && keys[k][a]; a++) {
            const cJSON *v = cJSON_GetObjectItemCaseSensitive(j, keys[k][a]);
            if (!v || cJSON_IsNull(v))
                continue;
            if (!cJSON_IsNumber(v) || v->valuedouble < 1 || v->valuedouble > (1 << 30) ||
                v->valuedouble != floor(v->valuedouble)) {
                st = lethe_fail(LETHE_ERR_FORMAT, "%s: %s must be a whole number >= 1", path,
                                keys[k][a]);
                goto done;
            }
            set_field(cfg, k, (int)v->valuedouble);
            *have |= 1u << k;
            break;
        }
    }
    if (hf)
        *hf = cJSON_IsString(cJSON_GetObjectItemCaseSensitive(j, "model_type"));
    st = check_settings(j, path, cfg, *have);
done:
    cJSON_Delete(j);
    return st;
}

lethe_status lethe_gpt_read_config(const char *path, lethe_gpt_config *cfg, unsigned *have)
{
    return read_config(path, cfg, have, NULL);
}

/* ---- model.safetensors ------------------------------------------------- */

/* The tensor `name` of st, with or without the "transformer." prefix. */
static const lethe_st_tensor *find_either(const lethe_safetensors *st, const char *name)
{
    char full[LETHE_GPT_NAME_MAX + 16];
    snprintf(full, sizeof full, PREFIX "%s", name);
    const lethe_st_tensor *t = lethe_safetensors_find(st, name);
    return t ? t : lethe_safetensors_find(st, full);
}

/* Blocks in the file: one more than the largest I of any "h.I." name. */
static int count_blocks(const lethe_safetensors *st)
{
    int n = 0;
    for (size_t i = 0; i < st->n_tensors; i++) {
        const char *s = st->tensors[i].name;
        if (!strncmp(s, PREFIX, sizeof PREFIX - 1))
            s += sizeof PREFIX - 1;
        if (s[0] != 'h' || s[1] != '.' || s[2] < '0' || s[2] > '9')
            continue;
        char *end;
        long k = strtol(s + 2, &end, 10);
        if (*end == '.' && k < (1 << 20) && k + 1 > n)
            n = (int)k + 1;
    }
    return n;
}

static void shape_str(char *buf, size_t cap, size_t rank, const size_t *shape)
{
    size_t o = (size_t)snprintf(buf, cap, "[");
    for (size_t i = 0; i < rank && o < cap; i++)
        o += (size_t)snprintf(buf + o, cap - o, i ? ", %zu" : "%zu", shape[i]);
    if (o < cap)
        snprintf(buf + o, cap - o, "]");
}

/* Check cfg (whose field k came from src[k]) against the tensors of st. */
/* The 2-D codes of a quantized wte (lethe/gpt_quant.h), or NULL. */
static const lethe_st_tensor *quantized_wte(const lethe_safetensors *st)
{
    const lethe_st_tensor *t = lethe_safetensors_meta(st, "quant_bits")
                                   ? lethe_safetensors_find(st, "wte.weight.qweight")
                                   : NULL;
    return t && t->rank == 2 ? t : NULL;
}

static lethe_status check_blocks(const lethe_safetensors *st, const char *path,
                                 const lethe_gpt_config *c, const char *const src[N_FIELDS]);

static lethe_status check_cfg(const lethe_safetensors *st, const char *path,
                              const lethe_gpt_config *c, const char *const src[N_FIELDS])
{
    const lethe_st_tensor *wte = find_either(st, "wte.weight");
    const lethe_st_tensor *wpe = find_either(st, "wpe.weight");
    const lethe_st_tensor *wte_q = wte ? NULL : quantized_wte(st);
    if (wte_q && wpe) /* codes: (V, C) or (V, C / 2), checked by lethe_gpt_quant_read */
        return wte_q->shape[0] == (size_t)c->vocab_size ? check_blocks(st, path, c, src)
               : lethe_fail(LETHE_ERR_FORMAT, "%s: vocab_size is %d but wte.weight of %s has "
                            "%zu rows", src[F_VOCAB], c->vocab_size, path, wte_q->shape[0]);
    if (!wte || !wpe)
        return lethe_fail(LETHE_ERR_NOT_FOUND, "%s: no tensor '%s' (nor '" PREFIX "%s'): not "
                          "a GPT-2 checkpoint", path, wte ? "wpe.weight" : "wte.weight",
                          wte ? "wpe.weight" : "wte.weight");
    if (wte->rank == 2 && wte->shape[1] != (size_t)c->n_embd)
        return lethe_fail(LETHE_ERR_FORMAT, "%s: n_embd is %d but wte.weight of %s is %zu "
                          "wide", src[F_EMBD], c->n_embd, path, wte->shape[1]);
    if (wte->rank == 2 && wte->shape[0] != (size_t)c->vocab_size)
        return lethe_fail(LETHE_ERR_FORMAT, "%s: vocab_size is %d but wte.weight of %s has "
                          "%zu rows", src[F_VOCAB], c->vocab_size, path, wte->shape[0]);
    if (wpe->rank == 2 && wpe->shape[0] != (size_t)c->n_positions)
        return lethe_fail(LETHE_ERR_FORMAT, "%s: n_positions is %d but wpe.weight of %s has "
                          "%zu rows", src[F_POS], c->n_positions, path, wpe->shape[0]);
    return check_blocks(st, path, c, src);
}

static lethe_status check_blocks(const lethe_safetensors *st, const char *path,
                                 const lethe_gpt_config *c, const char *const src[N_FIELDS])
{
    int blocks = count_blocks(st);
    if (blocks != c->n_layer)
        return lethe_fail(LETHE_ERR_FORMAT, "%s: n_layer is %d but %s has %d blocks", src[F_LAYER],
                          c->n_layer, path, blocks);
    if (c->n_head <= 0 || c->n_embd % c->n_head)
        return lethe_fail(LETHE_ERR_FORMAT, "%s: n_head %d does not divide n_embd %d",
                          src[F_HEAD], c->n_head, c->n_embd);
    return LETHE_OK;
}

/* Fill a model for cfg from st: every tensor present with its shape, and
 * lm_head.weight (when present) equal to wte.weight. */
static lethe_status load_tensors(const lethe_safetensors *st, const char *path,
                                 const lethe_gpt_config *cfg, lethe_gpt **out)
{
    *out = NULL;
    lethe_gpt *g = lethe_gpt_init(cfg);
    if (!g)
        return lethe_fail(LETHE_ERR_FORMAT, "%s: bad GPT config: %s", path,
                          lethe_error_detail());
    lethe_status s = LETHE_OK;
    char want[64], got[64];
    const int quant = quantized_wte(st) != NULL;
    for (int i = 0; i < g->n_tensors && s == LETHE_OK; i++) {
        const lethe_gpt_tensor *t = &g->tensors[i];
        const lethe_st_tensor *ft = find_either(st, t->name);
        size_t shape[2] = {(size_t)t->shape[0], (size_t)t->shape[1]};
        if (!ft && quant && t->rank == 2 && strcmp(t->name, "wpe.weight")) {
            continue; /* read below */
        } else if (!ft) {
            s = lethe_fail(LETHE_ERR_NOT_FOUND, "%s: no tensor '%s' (nor '" PREFIX "%s')", path,
                           t->name, t->name);
        } else if (ft->rank != (size_t)t->rank || ft->shape[0] != shape[0] ||
                   (t->rank == 2 && ft->shape[1] != shape[1])) {
            shape_str(want, sizeof want, (size_t)t->rank, shape);
            shape_str(got, sizeof got, ft->rank, ft->shape);
            s = lethe_fail(LETHE_ERR_FORMAT, "%s: tensor '%s' has shape %s, expected %s", path,
                           ft->name, got, want);
        } else {
            s = lethe_safetensors_to_f32(st, ft, g->params + t->offset);
        }
    }
    if (s == LETHE_OK && quant)
        s = lethe_gpt_quant_read(st, path, g);
    const lethe_st_tensor *head = s == LETHE_OK ? lethe_safetensors_find(st, "lm_head.weight")
                                                : NULL; /* (find sets the detail) */
    if (head) {
        const lethe_gpt_tensor *wte = &g->tensors[0];
        size_t shape[2] = {(size_t)wte->shape[0], (size_t)wte->shape[1]};
        float *buf = NULL;
        if (head->rank != 2 || head->shape[0] != shape[0] || head->shape[1] != shape[1]) {
            shape_str(want, sizeof want, 2, shape);
            shape_str(got, sizeof got, head->rank, head->shape);
            s = lethe_fail(LETHE_ERR_FORMAT, "%s: tensor 'lm_head.weight' has shape %s, "
                           "expected %s (wte.weight's)", path, got, want);
        } else if (!(buf = malloc(sizeof(float) * head->numel))) {
            s = lethe_fail(LETHE_ERR_NOMEM, "out of memory");
        } else if ((s = lethe_safetensors_to_f32(st, head, buf)) == LETHE_OK &&
                   memcmp(buf, g->params + wte->offset, sizeof(float) * head->numel)) {
            s = lethe_fail(LETHE_ERR_UNSUPPORTED, "%s: lm_head.weight differs from wte.weight; "
                           "lethe's output head is tied to the token embedding", path);
        }
        free(buf);
    }
    if (s != LETHE_OK) {
        lethe_gpt_free(g);
        return s;
    }
    *out = g;
    return LETHE_OK;
}

/* The config of st: field k from json (when bit k of have), else the
 * metadata, else the shapes; json and the metadata must agree. src[k] names
 * each field's source for messages (into labels). */
static lethe_status resolve_cfg(const lethe_safetensors *st, const char *path,
                                const lethe_gpt_config *json, unsigned have,
                                const char *json_path, lethe_gpt_config *cfg,
                                const char *src[N_FIELDS], char *meta_label, size_t cap)
{
    snprintf(meta_label, cap, "the metadata of %s", path);
    const lethe_st_tensor *wte = find_either(st, "wte.weight");
    const lethe_st_tensor *wpe = find_either(st, "wpe.weight");
    lethe_gpt_config shapes = {0};
    if (wte && wte->rank == 2) {
        shapes.vocab_size = (int)wte->shape[0];
        shapes.n_embd = (int)wte->shape[1];
        shapes.n_head = shapes.n_embd % 64 ? 1 : shapes.n_embd / 64;
    }
    if (wpe && wpe->rank == 2)
        shapes.n_positions = (int)wpe->shape[0];
    shapes.n_layer = count_blocks(st);
    for (int k = 0; k < N_FIELDS; k++) {
        const char *v = lethe_safetensors_meta(st, field_name[k]);
        char *end = NULL;
        long m = v ? strtol(v, &end, 10) : 0;
        int has_meta = v && !*end && m > 0 && m <= (1L << 30);
        if (have & (1u << k)) {
            set_field(cfg, k, get_field(json, k));
            src[k] = json_path;
            if (has_meta && m != get_field(json, k))
                return lethe_fail(LETHE_ERR_FORMAT, "%s: %s is %d but %s says %ld", json_path,
                                  field_name[k], get_field(json, k), meta_label, m);
        } else if (has_meta) {
            set_field(cfg, k, (int)m);
            src[k] = meta_label;
        } else {
            set_field(cfg, k, get_field(&shapes, k));
            src[k] = path;
        }
    }
    return LETHE_OK;
}

lethe_status lethe_gpt_load_config(const char *path, const lethe_gpt_config *cfg,
                                   lethe_gpt **out)
{
    *out = NULL;
    lethe_safetensors *st = NULL;
    lethe_status s = lethe_safetensors_open(path, &st);
    if (s != LETHE_OK)
        return s;
    lethe_gpt_config c = {0};
    const char *src[N_FIELDS];
    char meta_label[PATH_CAP];
    if (cfg) {
        c = *cfg;
        for (int k = 0; k < N_FIELDS; k++)
            src[k] = "the config";
    } else {
        s = resolve_cfg(st, path, &c, 0, NULL, &c, src, meta_label, sizeof meta_label);
    }
    if (s == LETHE_OK)
        s = check_cfg(st, path, &c, src);
    if (s == LETHE_OK)
        s = load_tensors(st, path, &c, out);
    lethe_safetensors_free(st);
    return s;
}

/* ---- the tokenizer ------------------------------------------------------ */

/* Make a non-special "<|endoftext|>" (as vocab.json gives it) special, by
 * rebuilding the tokenizer with the same tokens and merges. */
static lethe_status eot_special(lethe_tokenizer_t **tp)
{
    lethe_tokenizer_t *t = *tp;
    uint32_t eot;
    if (!lethe_tokenizer_find(t, EOT_TEXT, sizeof EOT_TEXT - 1, &eot))
        return LETHE_OK;
    lethe_tokenizer_t *n = lethe_tokenizer_new();
    if (!n)
        return LETHE_ERR_NOMEM;
    lethe_status s = LETHE_OK;
    size_t V = lethe_tokenizer_vocab_size(t);
    for (size_t id = 0; id < V && s == LETHE_OK; id++) {
        size_t len;
        const unsigned char *b = lethe_tokenizer_token(t, (uint32_t)id, &len);
        if (b)
            s = lethe_tokenizer_add_token(n, (uint32_t)id, b, len,
                                          id == eot || lethe_tokenizer_is_special(t, (uint32_t)id));
    }
    for (size_t r = 0; r < lethe_tokenizer_n_merges(t) && s == LETHE_OK; r++) {
        uint32_t a, b, res;
        lethe_tokenizer_merge(t, r, &a, &b, &res);
        s = lethe_tokenizer_add_merge(n, a, b, NULL);
    }
    if (s != LETHE_OK) {
        lethe_tokenizer_free(n);
        return s;
    }
    lethe_tokenizer_free(t);
    *tp = n;
    return LETHE_OK;
}

static long find_eot(const lethe_tokenizer_t *tok)
{
    size_t V = lethe_tokenizer_vocab_size(tok);
    for (size_t i = V; i-- > 0;) {
        size_t len;
        const unsigned char *b = lethe_tokenizer_token(tok, (uint32_t)i, &len);
        if (b && len == sizeof EOT_TEXT - 1 && !memcmp(b, EOT_TEXT, len) &&
            lethe_tokenizer_is_special(tok, (uint32_t)i))
            return (long)i;
    }
    return -1;
}

/* The directory's tokenizer into *tok (NULL when it has none). */
static lethe_status load_dir_tokenizer(const char *dir, lethe_gpt_dir *d)
{
    char json[PATH_CAP], vocab[PATH_CAP], merges[PATH_CAP];
    snprintf(json, sizeof json, "%s/tokenizer.json", dir);
    snprintf(vocab, sizeof vocab, "%s/vocab.json", dir);
    snprintf(merges, sizeof merges, "%s/merges.txt", dir);
    lethe_status s = LETHE_OK;
    int hv = file_exists(vocab), hm = file_exists(merges);
    if (file_exists(json)) {
        s = lethe_tokenizer_load_json(json, &d->tok);
        d->tok_source = "tokenizer.json";
    } else if (hv && hm) {
        s = lethe_tokenizer_load_gpt2(vocab, merges, &d->tok);
        d->tok_source = "vocab.json + merges.txt";
        d->hf = 1;
    } else if (hv || hm) {
        return lethe_fail(LETHE_ERR_NOT_FOUND, "%s: %s without %s (GPT-2's tokenizer needs "
                          "both)", dir, hv ? "vocab.json" : "merges.txt",
                          hv ? "merges.txt" : "vocab.json");
    } else {
        return LETHE_OK;
    }
    if (s == LETHE_OK)
        s = eot_special(&d->tok);
    if (s != LETHE_OK)
        return s;
    size_t tv = lethe_tokenizer_vocab_size(d->tok);
    if (tv > (size_t)d->model->cfg.vocab_size)
        return lethe_fail(LETHE_ERR_FORMAT, "%s: the tokenizer (%s) has ids up to %zu, beyond "
                          "the model's vocabulary of %d", dir, d->tok_source, tv - 1,
                          d->model->cfg.vocab_size);
    d->eot = find_eot(d->tok);
    return LETHE_OK;
}

/* ---- directories -------------------------------------------------------- */

void lethe_gpt_dir_free(lethe_gpt_dir *d)
{
    if (!d)
        return;
    lethe_gpt_free(d->model);
    lethe_tokenizer_free(d->tok);
    *d = (lethe_gpt_dir){.eot = -1};
}

/* The base directory a LoRA run records: config.json's "lora": {"base":
 * ...}, else adapter_config.json's base_model_name_or_path. *out is
 * malloc'd. */
static lethe_status lora_base_dir(const char *dir, char **out)
{
    char path[PATH_CAP];
    const char *keys[2][2] = {{"config.json", "lora"}, {"adapter_config.json", NULL}};
    *out = NULL;
    for (int i = 0; i < 2 && !*out; i++) {
        snprintf(path, sizeof path, "%s/%s", dir, keys[i][0]);
        if (!file_exists(path))
            continue;
        cJSON *j = NULL;
        lethe_status s = lethe_json_read(path, &j);
        if (s != LETHE_OK)
            return s;
        const cJSON *o = keys[i][1] ? cJSON_GetObjectItemCaseSensitive(j, keys[i][1]) : j;
        const cJSON *v = cJSON_GetObjectItemCaseSensitive(o, keys[i][1] ? "base"
                                                                       : "base_model_name_or_path");
        if (cJSON_IsString(v) && v->valuestring[0] && !(*out = strdup(v->valuestring))) {
            cJSON_Delete(j);
            return lethe_fail(LETHE_ERR_NOMEM, "out of memory");
        }
        cJSON_Delete(j);
    }
    if (!*out)
        return lethe_fail(LETHE_ERR_NOT_FOUND, "%s: a LoRA adapter without a base: neither "
                          "config.json (\"lora\": {\"base\": DIR}) nor adapter_config.json "
                          "(base_model_name_or_path) names one", dir);
    return LETHE_OK;
}

size_t lethe_gpt_dir_sources(const char *dir, char **out, size_t max)
{
    size_t n = 0;
    char *cur = max ? strdup(dir) : NULL;
    while (cur) {
        char model[PATH_CAP], adapter[PATH_CAP];
        snprintf(model, sizeof model, "%s/model.safetensors", cur);
        snprintf(adapter, sizeof adapter, "%s/adapter_model.safetensors", cur);
        out[n++] = cur;
        cur = NULL; /* lora_base_dir leaves it NULL when it fails */
        if (n < max && !file_exists(model) && file_exists(adapter))
            lora_base_dir(out[n - 1], &cur);
    }
    lethe_error_clear();
    return n;
}

/* A run that holds a LoRA adapter and no model.safetensors: load the base it
 * records, then the adapter, and merge it. The tokenizer is the run's
 * (the base's when the run has none). depth bounds a chain of LoRA runs. */
static lethe_status load_lora_run(const char *dir, int want_tok, lethe_gpt_dir *d, int depth);

static lethe_status dir_load(const char *dir, int want_tok, lethe_gpt_dir *d, int depth)
{
    *d = (lethe_gpt_dir){.eot = -1};
    char model[PATH_CAP], config[PATH_CAP], meta_label[PATH_CAP];
    struct stat sb;
    snprintf(model, sizeof model, "%s/model.safetensors", dir);
    snprintf(config, sizeof config, "%s/config.json", dir);
    if (stat(dir, &sb) != 0 || !S_ISDIR(sb.st_mode))
        return lethe_fail(LETHE_ERR_NOT_FOUND, "%s: no such directory (expected a lethe run or "
                          "a Hugging Face GPT-2 directory with model.safetensors)", dir);
    if (!file_exists(model)) {
        char bin[PATH_CAP], adapter[PATH_CAP];
        snprintf(adapter, sizeof adapter, "%s/adapter_model.safetensors", dir);
        if (file_exists(adapter))
            return load_lora_run(dir, want_tok, d, depth);
        snprintf(bin, sizeof bin, "%s/pytorch_model.bin", dir);
        return lethe_fail(LETHE_ERR_NOT_FOUND, "%s: no model.safetensors: neither a lethe run "
                          "nor a Hugging Face GPT-2 directory%s", dir,
                          file_exists(bin) ? " (pytorch_model.bin is not read: convert it to "
                                             "model.safetensors)" : "");
    }
    lethe_gpt_config json = {0}, cfg = {0};
    unsigned have = 0;
    lethe_status s = LETHE_OK;
    if (file_exists(config))
        s = read_config(config, &json, &have, &d->hf);
    lethe_safetensors *st = NULL;
    if (s == LETHE_OK)
        s = lethe_safetensors_open(model, &st);
    const char *src[N_FIELDS];
    if (s == LETHE_OK)
        s = resolve_cfg(st, model, &json, have, config, &cfg, src, meta_label,
                        sizeof meta_label);
    if (s == LETHE_OK)
        s = check_cfg(st, model, &cfg, src);
    if (s == LETHE_OK)
        s = load_tensors(st, model, &cfg, &d->model);
    if (s == LETHE_OK && !lethe_safetensors_find(st, "wte.weight") && !quantized_wte(st))
        d->hf = 1; /* "transformer."-prefixed names */
    lethe_safetensors_free(st);
    if (s == LETHE_OK && want_tok)
        s = load_dir_tokenizer(dir, d);
    if (s != LETHE_OK)
        lethe_gpt_dir_free(d);
    return s;
}

/* Fail with s, prefixing the current detail message with a context. */
static lethe_status fail_ctx(lethe_status s, const char *dir, const char *what, const char *base)
{
    char detail[1024];
    snprintf(detail, sizeof detail, "%s", lethe_error_detail());
    return lethe_fail(s, "%s: %s %s: %s", dir, what, base, detail);
}

static lethe_status load_lora_run(const char *dir, int want_tok, lethe_gpt_dir *d, int depth)
{
    char *base = NULL, config[PATH_CAP], tokpath[PATH_CAP];
    lethe_gpt_config want = {0};
    unsigned have = 0;
    lethe_lora *l = NULL;
    struct stat sb;
    if (depth >= 8)
        return lethe_fail(LETHE_ERR_FORMAT, "%s: a chain of more than 8 LoRA runs (a run "
                          "that is its own base?)", dir);
    lethe_status s = lora_base_dir(dir, &base);
    if (s != LETHE_OK)
        return s;
    snprintf(config, sizeof config, "%s/config.json", dir);
    if (file_exists(config))
        s = read_config(config, &want, &have, NULL);
    if (s == LETHE_OK && (stat(base, &sb) != 0 || !S_ISDIR(sb.st_mode)))
        s = lethe_fail(LETHE_ERR_NOT_FOUND, "%s: the LoRA adapter's base %s is missing (the run "
                       "holds the adapter only; restore the base, or train with the adapter merged)", dir,
                       base);
    snprintf(tokpath, sizeof tokpath, "%s/tokenizer.json", dir);
    int own_tok = want_tok && file_exists(tokpath);
    if (s == LETHE_OK) {
        s = dir_load(base, want_tok && !own_tok, d, depth + 1);
        if (s != LETHE_OK)
            s = fail_ctx(s, dir, "its LoRA base", base);
    }
    if (s == LETHE_OK) {
        const lethe_gpt_config *c = &d->model->cfg;
        for (int k = 0; k < N_FIELDS && s == LETHE_OK; k++)
            if ((have & (1u << k)) && get_field(&want, k) != get_field(c, k))
                s = lethe_fail(LETHE_ERR_FORMAT, "%s: the adapter was trained on a base with "
                               "%s %d, but its base %s has %d (the base was replaced?)", dir,
                               field_name[k], get_field(&want, k), base, get_field(c, k));
    }
    if (s == LETHE_OK) {
        s = lethe_lora_load(dir, d->model, &l);
        if (s != LETHE_OK)
            s = fail_ctx(s, dir, "the adapter does not fit its base", base);
    }
    if (s == LETHE_OK) {
        lethe_lora_merge(l, d->model);
        lethe_lora_free(l);
    }
    if (s == LETHE_OK && own_tok) {
        lethe_tokenizer_free(d->tok);
        d->tok = NULL;
        s = load_dir_tokenizer(dir, d);
    }
    free(base);
    if (s != LETHE_OK)
        lethe_gpt_dir_free(d);
    return s;
}

lethe_status lethe_gpt_dir_load(const char *dir, int want_tok, lethe_gpt_dir *d)
{
    return dir_load(dir, want_tok, d, 0);
}

/* ---- writing Hugging Face's layout -------------------------------------- */

/* bytes[0..n) spelled in GPT-2's alphabet as UTF-8 (code points < 0x800). */
static char *spell(const unsigned char *b, size_t n)
{
    char *s = malloc(2 * n + 1), *o = s;
    if (!s)
        return NULL;
    for (size_t i = 0; i < n; i++) {
        uint32_t cp = lethe_tokenizer_byte_char(b[i]);
        if (cp < 0x80) {
            *o++ = (char)cp;
        } else {
            *o++ = (char)(0xC0 | (cp >> 6));
            *o++ = (char)(0x80 | (cp & 0x3F));
        }
    }
    *o = 0;
    return s;
}

/* Whether special token id can be spelled as its own text in vocab.json and
 * read back: printable ASCII only, not the bytes of another token. */
static int special_writable(const lethe_tokenizer_t *t, uint32_t id)
{
    size_t len;
    const unsigned char *b = lethe_tokenizer_token(t, id, &len);
    uint32_t other;
    for (size_t i = 0; i < len; i++)
        if (b[i] < '!' || b[i] > '~')
            return 0;
    if (lethe_tokenizer_find(t, b, len, &other))
        return 0;
    size_t V = lethe_tokenizer_vocab_size(t);
    for (size_t j = 0; j < V; j++) {
        size_t l2;
        const unsigned char *b2 = lethe_tokenizer_token(t, (uint32_t)j, &l2);
        if (j != id && b2 && l2 == len && !memcmp(b, b2, len))
            return 0;
    }
    return 1;
}

lethe_status lethe_gpt_save_vocab_merges(const lethe_tokenizer_t *tok, const char *vocab_path,
                                         const char *merges_path)
{
    size_t V = lethe_tokenizer_vocab_size(tok);
    for (size_t id = 0; id < V; id++)
        if (lethe_tokenizer_token(tok, (uint32_t)id, &(size_t){0}) &&
            lethe_tokenizer_is_special(tok, (uint32_t)id) &&
            !special_writable(tok, (uint32_t)id))
            return lethe_fail(LETHE_ERR_UNSUPPORTED, "special token %zu cannot be written to "
                              "vocab.json (not printable ASCII, or the text of another token)",
                              id);
    lethe_status s = LETHE_OK;
    cJSON *obj = cJSON_CreateObject();
    if (!obj)
        return lethe_fail(LETHE_ERR_NOMEM, "out of memory");
    for (size_t id = 0; id < V && s == LETHE_OK; id++) {
        size_t len;
        const unsigned char *b = lethe_tokenizer_token(tok, (uint32_t)id, &len);
        if (!b)
            continue;
        char *key = NULL;
        if (lethe_tokenizer_is_special(tok, (uint32_t)id)) {
            if ((key = malloc(len + 1))) {
                memcpy(key, b, len);
                key[len] = 0;
            }
        } else {
            key = spell(b, len);
        }
        cJSON *num = cJSON_CreateNumber((double)id);
        if (!key || !num || !cJSON_AddItemToObject(obj, key, num)) {
            cJSON_Delete(num);
            s = lethe_fail(LETHE_ERR_NOMEM, "out of memory");
        }
        free(key);
    }
    char *text = s == LETHE_OK ? cJSON_PrintUnformatted(obj) : NULL;
    cJSON_Delete(obj);
    if (s == LETHE_OK && !text)
        s = lethe_fail(LETHE_ERR_NOMEM, "out of memory");
    if (s == LETHE_OK)
        s = lethe_file_write_atomic(vocab_path, text, strlen(text));
    free(text);
    if (s != LETHE_OK)
        return s;

    lethe_afile *f = lethe_afile_open(merges_path);
    if (!f)
        return LETHE_ERR_IO;
    fputs("#version: 0.2\n", f->fp);
    for (size_t r = 0; r < lethe_tokenizer_n_merges(tok); r++) {
        uint32_t a, b, res;
        size_t la, lb;
        lethe_tokenizer_merge(tok, r, &a, &b, &res);
        const unsigned char *ba = lethe_tokenizer_token(tok, a, &la);
        const unsigned char *bb = lethe_tokenizer_token(tok, b, &lb);
        char *sa = spell(ba, la), *sb = spell(bb, lb);
        if (!sa || !sb) {
            free(sa), free(sb);
            lethe_afile_abort(f);
            return lethe_fail(LETHE_ERR_NOMEM, "out of memory");
        }
        fprintf(f->fp, "%s %s\n", sa, sb);
        free(sa), free(sb);
    }
    return lethe_afile_commit(f);
}

/* config.json in the form of Hugging Face's GPT-2. */
static lethe_status write_hf_config(const lethe_gpt_config *c, long eot, const char *path,
                                    const char *lethe_json)
{
    cJSON *j = cJSON_CreateObject(), *arch = cJSON_CreateArray();
    cJSON_AddItemToArray(arch, cJSON_CreateString("GPT2LMHeadModel"));
    cJSON_AddStringToObject(j, "activation_function", "gelu_new");
    cJSON_AddItemToObject(j, "architectures", arch);
    cJSON_AddNumberToObject(j, "attn_pdrop", 0.1);
    if (eot >= 0)
        cJSON_AddNumberToObject(j, "bos_token_id", (double)eot);
    cJSON_AddNumberToObject(j, "embd_pdrop", 0.1);
    if (eot >= 0)
        cJSON_AddNumberToObject(j, "eos_token_id", (double)eot);
    cJSON_AddNumberToObject(j, "initializer_range", 0.02);
    cJSON_AddRawToObject(j, "layer_norm_epsilon", "1e-05");
    cJSON_AddStringToObject(j, "model_type", "gpt2");
    cJSON_AddNumberToObject(j, "n_ctx", c->n_positions);
    cJSON_AddNumberToObject(j, "n_embd", c->n_embd);
    cJSON_AddNumberToObject(j, "n_head", c->n_head);
    cJSON_AddNullToObject(j, "n_inner");
    cJSON_AddNumberToObject(j, "n_layer", c->n_layer);
    cJSON_AddNumberToObject(j, "n_positions", c->n_positions);
    cJSON_AddBoolToObject(j, "reorder_and_upcast_attn", 0);
    cJSON_AddNumberToObject(j, "resid_pdrop", 0.1);
    cJSON_AddBoolToObject(j, "scale_attn_by_inverse_layer_idx", 0);
    cJSON_AddBoolToObject(j, "scale_attn_weights", 1);
    cJSON_AddBoolToObject(j, "tie_word_embeddings", 1);
    cJSON_AddStringToObject(j, "torch_dtype", "float32");
    cJSON_AddBoolToObject(j, "use_cache", 1);
    cJSON_AddNumberToObject(j, "vocab_size", c->vocab_size);
    lethe_status s = LETHE_OK;
    if (lethe_json) {
        cJSON *extra = cJSON_Parse(lethe_json);
        if (!cJSON_IsObject(extra)) {
            cJSON_Delete(extra);
            s = lethe_fail(LETHE_ERR_INVALID, "%s: the lethe settings are not a JSON object",
                           path);
        } else {
            cJSON_AddItemToObject(j, "lethe", extra);
        }
    }
    char *text = s == LETHE_OK ? cJSON_Print(j) : NULL;
    cJSON_Delete(j);
    if (s == LETHE_OK && !text)
        s = lethe_fail(LETHE_ERR_NOMEM, "out of memory");
    if (s == LETHE_OK) {
        size_t len = strlen(text);
        text[len] = '\n'; /* replaces the NUL; written without it */
        s = lethe_file_write_atomic(path, text, len + 1);
    }
    free(text);
    return s;
}

lethe_status lethe_gpt_save_hf(const lethe_gpt *g, const lethe_tokenizer_t *tok, const char *dir,
                               const lethe_st_meta *meta, size_t n_meta, const char *lethe_json)
{
    char path[PATH_CAP], path2[PATH_CAP];
    for (size_t k = 0; k < n_meta; k++) {
        int taken = !strcmp(meta[k].key, "format");
        for (int f = 0; f < N_FIELDS; f++)
            taken |= !strcmp(meta[k].key, field_name[f]);
        if (taken)
            return lethe_fail(LETHE_ERR_INVALID, "metadata key '%s' is reserved", meta[k].key);
    }
    lethe_status s = LETHE_OK;
    int n = g->n_tensors;
    lethe_st_f32 *ts = calloc((size_t)n, sizeof *ts);
    size_t *shapes = calloc((size_t)n * 2, sizeof *shapes);
    char (*names)[LETHE_GPT_NAME_MAX + 16] = calloc((size_t)n, sizeof *names);
    lethe_st_meta *all = calloc(n_meta + 1 + N_FIELDS, sizeof *all);
    char values[N_FIELDS][16];
    if (!ts || !shapes || !names || !all) {
        s = lethe_fail(LETHE_ERR_NOMEM, "out of memory");
        goto done;
    }
    for (int i = 0; i < n; i++) {
        const lethe_gpt_tensor *t = &g->tensors[i];
        snprintf(names[i], sizeof names[i], PREFIX "%s", t->name);
        shapes[2 * i] = (size_t)t->shape[0];
        shapes[2 * i + 1] = (size_t)t->shape[1];
        ts[i] = (lethe_st_f32){names[i], (size_t)t->rank, shapes + 2 * i, g->params + t->offset};
    }
    all[0] = (lethe_st_meta){"format", "pt"};
    for (int k = 0; k < N_FIELDS; k++) {
        snprintf(values[k], sizeof values[k], "%d", get_field(&g->cfg, k));
        all[1 + k] = (lethe_st_meta){(char *)field_name[k], values[k]};
    }
    for (size_t k = 0; k < n_meta; k++)
        all[1 + N_FIELDS + k] = meta[k];
    long eot = tok ? find_eot(tok) : -1;
    if (tok) {
        snprintf(path, sizeof path, "%s/tokenizer.json", dir);
        s = lethe_tokenizer_save_json(tok, path);
        snprintf(path, sizeof path, "%s/vocab.json", dir);
        snprintf(path2, sizeof path2, "%s/merges.txt", dir);
        if (s == LETHE_OK && (s = lethe_gpt_save_vocab_merges(tok, path, path2)) ==
                                 LETHE_ERR_UNSUPPORTED) {
            lethe_error_clear(); /* tokenizer.json alone holds it */
            s = LETHE_OK;
        }
    }
    snprintf(path, sizeof path, "%s/config.json", dir);
    if (s == LETHE_OK)
        s = write_hf_config(&g->cfg, eot, path, lethe_json);
    snprintf(path, sizeof path, "%s/model.safetensors", dir);
    if (s == LETHE_OK)
        s = lethe_safetensors_write(path, ts, (size_t)n, all, n_meta + 1 + N_FIELDS);
done:
    free(ts);
    free(shapes);
    free(names);
    free(all);
    return s;
}
