/* LoRA adapters for GPT-2 models: W_eff = W0 + s A B written into the
 * model's arena, the exact adapter gradient from the model's dW_eff, and
 * PEFT's adapter files. */
#include "lethe/lora.h"
#include "lethe/fileio.h"
#include "lethe/gemm.h"
#include "lethe/gpt_quant.h"
#include "lethe/json.h"
#include "lethe/rng.h"
#include "lethe/safetensors.h"

#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#define N_TARGETS 4
#define STREAM_LORA 0x4C6F524100000000ull /* "LoRA" + 4 layer + target */
#define NAME_MAX_LEN 128

/* Module names: lethe's (precise) and PEFT's (the last component, which is
 * all PEFT matches a list entry against: both projections are "c_proj"). */
static const char *const target_names[N_TARGETS] = {"attn.c_attn", "attn.c_proj", "mlp.c_fc",
                                                    "mlp.c_proj"};
static const char *const peft_names[N_TARGETS] = {"c_attn", "c_proj", "c_fc", "c_proj"};

static int target_index(unsigned bit)
{
    for (int t = 0; t < N_TARGETS; t++)
        if (bit == 1u << t)
            return t;
    return -1;
}

void lethe_lora_config_defaults(lethe_lora_config *cfg)
{
    memset(cfg, 0, sizeof *cfg);
    cfg->rank = 8;
    cfg->alpha = 16.0f;
    cfg->targets = LETHE_LORA_ALL;
    cfg->layer_begin = 0;
    cfg->layer_end = 0;
}

const char *lethe_lora_target_name(unsigned bit)
{
    int t = target_index(bit);
    return t < 0 ? NULL : target_names[t];
}

lethe_status lethe_lora_parse_targets(const char *list, unsigned *mask)
{
    *mask = 0;
    const char *p = list;
    while (*p) {
        size_t n = strcspn(p, ",");
        int found = 0;
        if (n == 3 && !strncmp(p, "all", 3)) {
            *mask |= LETHE_LORA_ALL;
            found = 1;
        }
        for (int t = 0; !found && t < N_TARGETS; t++)
            if (strlen(target_names[t]) == n && !strncmp(p, target_names[t], n)) {
                *mask |= 1u << t;
                found = 1;
            }
        if (!found)
            return lethe_fail(LETHE_ERR_INVALID,
                              "unknown LoRA target '%.*s' (expected a comma-separated list of "
                              "attn.c_attn, attn.c_proj, mlp.c_fc, mlp.c_proj, or all)",
                              (int)n, p);
        p += n;
        if (*p == ',')
            p++;
    }
    if (!*mask)
        return lethe_fail(LETHE_ERR_INVALID, "no LoRA target given");
    return LETHE_OK;
}

static int same_config(const lethe_gpt_config *a, const lethe_gpt_config *b)
{
    return a->vocab_size == b->vocab_size && a->n_positions == b->n_positions &&
           a->n_embd == b->n_embd && a->n_layer == b->n_layer && a->n_head == b->n_head;
}

lethe_status lethe_lora_check(const lethe_lora *l, const lethe_gpt *g)
{
    if (same_config(&l->base, &g->cfg))
        return LETHE_OK;
    return lethe_fail(LETHE_ERR_INVALID,
                      "the LoRA adapter was made for a model with V %d, T %d, C %d, L %d, NH %d; "
                      "this one has V %d, T %d, C %d, L %d, NH %d",
                      l->base.vocab_size, l->base.n_positions, l->base.n_embd, l->base.n_layer,
                      l->base.n_head, g->cfg.vocab_size, g->cfg.n_positions, g->cfg.n_embd,
                      g->cfg.n_layer, g->cfg.n_head);
}

void lethe_lora_free(lethe_lora *l)
{
    if (!l)
        return;
    free(l->sites);
    free(l->params);
    free(l->grads);
    free(l->w0);
    free(l);
}

/* An adapter for g under cfg with every site laid out, W0 copied, A, B and
 * the gradients zero. NULL (detail set) on a bad configuration. */
static lethe_lora *lora_new(const lethe_gpt *g, const lethe_lora_config *cfg)
{
    lethe_lora_config c = *cfg;
    int L = g->cfg.n_layer;
    if (c.targets == 0)
        c.targets = LETHE_LORA_ALL;
    if (c.layer_end <= 0)
        c.layer_end = L;
    if (c.rank <= 0) {
        lethe_fail(LETHE_ERR_INVALID, "LoRA rank %d: it must be positive", c.rank);
        return NULL;
    }
    if (!isfinite(c.alpha)) {
        lethe_fail(LETHE_ERR_INVALID, "LoRA alpha must be a finite number");
        return NULL;
    }
    if (c.targets & ~LETHE_LORA_ALL) {
        lethe_fail(LETHE_ERR_INVALID, "LoRA targets 0x%x: unknown bits (at most 0x%x)",
                   c.targets, LETHE_LORA_ALL);
        return NULL;
    }
    if (c.layer_begin < 0 || c.layer_begin >= c.layer_end || c.layer_end > L) {
        lethe_fail(LETHE_ERR_INVALID,
                   "LoRA layers [%d, %d): not a non-empty range of the model's %d blocks",
                   c.layer_begin, c.layer_end, L);
        return NULL;
    }
    lethe_lora *l = calloc(1, sizeof *l);
    if (!l) {
        lethe_fail(LETHE_ERR_NOMEM, "out of memory for a LoRA adapter");
        return NULL;
    }
    l->cfg = c;
    l->base = g->cfg;
    l->scale = c.alpha / (float)c.rank;
    int per_block = 0;
    for (int t = 0; t < N_TARGETS; t++)
        per_block += (c.targets >> t) & 1;
    l->n_sites = per_block * (c.layer_end - c.layer_begin);
    l->sites = calloc((size_t)l->n_sites, sizeof *l->sites);
    if (!l->sites)
        goto nomem;
    int k = 0;
    for (int layer = c.layer_begin; layer < c.layer_end; layer++)
        for (int t = 0; t < N_TARGETS; t++) {
            if (!(c.targets & (1u << t)))
                continue;
            char name[NAME_MAX_LEN];
            snprintf(name, sizeof name, "h.%d.%s.weight", layer, target_names[t]);
            const lethe_gpt_tensor *w = lethe_gpt_find(g, name);
            LETHE_ASSERT(w && w->rank == 2);
            lethe_lora_site *s = &l->sites[k++];
            s->layer = layer;
            s->target = 1u << t;
            s->in = (int)w->shape[0];
            s->out = (int)w->shape[1];
            s->w_offset = w->offset;
            s->a_offset = l->n_params;
            s->b_offset = s->a_offset + (long)s->in * c.rank;
            l->n_params = s->b_offset + (long)c.rank * s->out;
            s->w0_offset = l->n_w0;
            l->n_w0 += (long)s->in * s->out;
        }
    l->params = calloc((size_t)l->n_params, sizeof *l->params);
    l->grads = calloc((size_t)l->n_params, sizeof *l->grads);
    l->w0 = malloc(sizeof *l->w0 * (size_t)l->n_w0);
    if (!l->params || !l->grads || !l->w0)
        goto nomem;
    for (int i = 0; i < l->n_sites; i++) {
        const lethe_lora_site *s = &l->sites[i];
        memcpy(l->w0 + s->w0_offset, g->params + s->w_offset,
               sizeof(float) * (size_t)s->in * (size_t)s->out);
    }
    return l;
nomem:
    lethe_lora_free(l);
    lethe_fail(LETHE_ERR_NOMEM, "out of memory for a LoRA adapter");
    return NULL;
}

lethe_lora *lethe_lora_init(const lethe_gpt *g, const lethe_lora_config *cfg, uint64_t seed)
{
    lethe_lora *l = lora_new(g, cfg);
    if (!l)
        return NULL;
    const int r = l->cfg.rank;
    for (int i = 0; i < l->n_sites; i++) {
        const lethe_lora_site *s = &l->sites[i];
        /* kaiming_uniform_(a = sqrt(5)) on PEFT's lora_A (r, in): gain
         * sqrt(2 / (1 + 5)), bound gain sqrt(3 / in) = 1 / sqrt(in). Drawn in
         * PEFT's element order, stored transposed. */
        double bound = 1.0 / sqrt((double)s->in);
        lethe_rng rng =
            lethe_rng_init(seed, STREAM_LORA + 4u * (uint64_t)s->layer +
                                     (uint64_t)target_index(s->target));
        float *A = l->params + s->a_offset;
        for (int j = 0; j < r; j++)
            for (int x = 0; x < s->in; x++)
                A[(long)x * r + j] = (float)((2.0 * lethe_rng_uniform(&rng) - 1.0) * bound);
    }
    return l;
}

void lethe_lora_apply(const lethe_lora *l, lethe_gpt *g)
{
    LETHE_ASSERT(same_config(&l->base, &g->cfg));
    const int r = l->cfg.rank;
    lethe_gpt_quant_drop(g); /* the codes no longer hold the weights */
    for (int i = 0; i < l->n_sites; i++) {
        const lethe_lora_site *s = &l->sites[i];
        float *W = g->params + s->w_offset;
        memcpy(W, l->w0 + s->w0_offset, sizeof(float) * (size_t)s->in * (size_t)s->out);
        lethe_gemm(0, 0, s->in, s->out, r, l->scale, l->params + s->a_offset, r,
                   l->params + s->b_offset, s->out, 1.0f, W, s->out);
    }
}

void lethe_lora_merge(const lethe_lora *l, lethe_gpt *g) { lethe_lora_apply(l, g); }

void lethe_lora_unmerge(const lethe_lora *l, lethe_gpt *g)
{
    LETHE_ASSERT(same_config(&l->base, &g->cfg));
    for (int i = 0; i < l->n_sites; i++) {
        const lethe_lora_site *s = &l->sites[i];
        memcpy(g->params + s->w_offset, l->w0 + s->w0_offset,
               sizeof(float) * (size_t)s->in * (size_t)s->out);
    }
}

void lethe_lora_backward(lethe_lora *l, const lethe_gpt *g)
{
    LETHE_ASSERT(same_config(&l->base, &g->cfg));
    const int r = l->cfg.rank;
    for (int i = 0; i < l->n_sites; i++) {
        const lethe_lora_site *s = &l->sites[i];
        const float *dW = g->grads + s->w_offset; /* (in, out) */
        const float *A = l->params + s->a_offset, *B = l->params + s->b_offset;
        float *dA = l->grads + s->a_offset, *dB = l->grads + s->b_offset;
        /* dA (in, r) += s dW B^T;  dB (r, out) += s A^T dW */
        lethe_gemm(0, 1, s->in, r, s->out, l->scale, dW, s->out, B, s->out, 1.0f, dA, r);
        lethe_gemm(1, 0, r, s->out, s->in, l->scale, A, r, dW, s->out, 1.0f, dB, s->out);
    }
}

void lethe_lora_zero_grad(lethe_lora *l)
{
    memset(l->grads, 0, sizeof *l->grads * (size_t)l->n_params);
}

/* ---- files -------------------------------------------------------------- */

/* PEFT's tensor name of site s's A (which 'A') or B ('B'); `prefix` is
 * "base_model.model.transformer." or "base_model.model.". */
static void tensor_name(char *buf, size_t n, const char *prefix, const lethe_lora_site *s,
                        char which)
{
    snprintf(buf, n, "%sh.%d.%s.lora_%c.weight", prefix, s->layer,
             target_names[target_index(s->target)], which);
}

static const char PREFIX[] = "base_model.model.transformer.";
static const char PREFIX_BARE[] = "base_model.model.";

/* target_modules: PEFT's list when it says exactly which modules (the two
 * c_proj are both or neither chosen), else a regex PEFT matches in full
 * against module names, the layer range folded in. */
static cJSON *peft_targets(const lethe_lora_config *c, int n_layer)
{
    unsigned both = LETHE_LORA_ATTN_PROJ | LETHE_LORA_MLP_PROJ;
    int exact = (c->targets & both) == both || !(c->targets & both);
    if (exact) {
        cJSON *list = cJSON_CreateArray();
        for (int t = 0; list && t < N_TARGETS; t++)
            if ((c->targets & (1u << t)) && !(t == 3 && (c->targets & LETHE_LORA_ATTN_PROJ)))
                cJSON_AddItemToArray(list, cJSON_CreateString(peft_names[t]));
        return list;
    }
    size_t cap = 256 + 12 * (size_t)(c->layer_end - c->layer_begin), k = 0;
    char *re = malloc(cap);
    if (!re)
        return NULL;
    k += (size_t)snprintf(re + k, cap - k, "(.*\\.)?h\\.");
    if (c->layer_begin == 0 && c->layer_end == n_layer) {
        k += (size_t)snprintf(re + k, cap - k, "[0-9]+");
    } else {
        k += (size_t)snprintf(re + k, cap - k, "(");
        for (int i = c->layer_begin; i < c->layer_end; i++)
            k += (size_t)snprintf(re + k, cap - k, "%s%d", i > c->layer_begin ? "|" : "", i);
        k += (size_t)snprintf(re + k, cap - k, ")");
    }
    k += (size_t)snprintf(re + k, cap - k, "\\.(");
    int first = 1;
    for (int t = 0; t < N_TARGETS; t++)
        if (c->targets & (1u << t)) {
            const char *dot = strchr(target_names[t], '.');
            k += (size_t)snprintf(re + k, cap - k, "%s%.*s\\.%s", first ? "" : "|",
                                  (int)(dot - target_names[t]), target_names[t], dot + 1);
            first = 0;
        }
    snprintf(re + k, cap - k, ")");
    cJSON *j = cJSON_CreateString(re);
    free(re);
    return j;
}

static cJSON *config_json(const lethe_lora *l, const char *base_name)
{
    const lethe_lora_config *c = &l->cfg;
    cJSON *j = cJSON_CreateObject();
    if (!j)
        return NULL;
    cJSON_AddStringToObject(j, "peft_type", "LORA");
    cJSON_AddStringToObject(j, "task_type", "CAUSAL_LM");
    if (base_name)
        cJSON_AddStringToObject(j, "base_model_name_or_path", base_name);
    else
        cJSON_AddNullToObject(j, "base_model_name_or_path");
    cJSON_AddNumberToObject(j, "r", c->rank);
    cJSON_AddNumberToObject(j, "lora_alpha", (double)c->alpha);
    cJSON_AddNumberToObject(j, "lora_dropout", 0.0);
    cJSON_AddStringToObject(j, "bias", "none");
    cJSON_AddBoolToObject(j, "fan_in_fan_out", 1);
    cJSON_AddBoolToObject(j, "use_rslora", 0);
    cJSON_AddBoolToObject(j, "inference_mode", 1);
    cJSON_AddItemToObject(j, "target_modules", peft_targets(c, l->base.n_layer));
    int all_layers = c->layer_begin == 0 && c->layer_end == l->base.n_layer;
    cJSON *layers = all_layers ? cJSON_CreateNull() : cJSON_CreateArray();
    for (int i = c->layer_begin; !all_layers && layers && i < c->layer_end; i++)
        cJSON_AddItemToArray(layers, cJSON_CreateNumber(i));
    cJSON_AddItemToObject(j, "layers_to_transform", layers);
    if (all_layers)
        cJSON_AddNullToObject(j, "layers_pattern");
    else
        cJSON_AddStringToObject(j, "layers_pattern", "h");
    cJSON *lt = cJSON_AddArrayToObject(j, "lethe_targets");
    for (int t = 0; lt && t < N_TARGETS; t++)
        if (c->targets & (1u << t))
            cJSON_AddItemToArray(lt, cJSON_CreateString(target_names[t]));
    cJSON *ll = cJSON_AddArrayToObject(j, "lethe_layers");
    if (ll) {
        cJSON_AddItemToArray(ll, cJSON_CreateNumber(c->layer_begin));
        cJSON_AddItemToArray(ll, cJSON_CreateNumber(c->layer_end));
    }
    return j;
}

lethe_status lethe_lora_save(const lethe_lora *l, const char *dir, const char *base_name)
{
    char path[4200];
    lethe_status st = LETHE_OK;
    const int r = l->cfg.rank;
    size_t n = 2 * (size_t)l->n_sites;
    lethe_st_f32 *ts = calloc(n ? n : 1, sizeof *ts);
    char(*names)[NAME_MAX_LEN] = calloc(n ? n : 1, sizeof *names);
    size_t(*shapes)[2] = calloc(n ? n : 1, sizeof *shapes);
    float *data = malloc(sizeof *data * (size_t)(l->n_params ? l->n_params : 1));
    cJSON *j = config_json(l, base_name);
    char *text = j ? cJSON_Print(j) : NULL;
    if (!ts || !names || !shapes || !data || !text) {
        st = lethe_fail(LETHE_ERR_NOMEM, "out of memory saving a LoRA adapter");
        goto done;
    }
    for (int i = 0; i < l->n_sites; i++) {
        const lethe_lora_site *s = &l->sites[i];
        const float *A = l->params + s->a_offset, *B = l->params + s->b_offset;
        float *Ap = data + s->a_offset, *Bp = data + s->b_offset;
        for (int x = 0; x < s->in; x++) /* A (in, r) -> lora_A (r, in) */
            for (int k = 0; k < r; k++)
                Ap[(long)k * s->in + x] = A[(long)x * r + k];
        for (int k = 0; k < r; k++) /* B (r, out) -> lora_B (out, r) */
            for (int o = 0; o < s->out; o++)
                Bp[(long)o * r + k] = B[(long)k * s->out + o];
        for (int h = 0; h < 2; h++) {
            size_t t = 2 * (size_t)i + (size_t)h;
            tensor_name(names[t], sizeof names[t], PREFIX, s, h ? 'B' : 'A');
            shapes[t][0] = h ? (size_t)s->out : (size_t)r;
            shapes[t][1] = h ? (size_t)r : (size_t)s->in;
            ts[t] = (lethe_st_f32){names[t], 2, shapes[t], h ? Bp : Ap};
        }
    }
    char fmt_key[] = "format", fmt_val[] = "pt";
    lethe_st_meta meta = {fmt_key, fmt_val};
    snprintf(path, sizeof path, "%s/adapter_model.safetensors", dir);
    st = lethe_safetensors_write(path, ts, n, &meta, 1);
    if (st == LETHE_OK) {
        size_t len = strlen(text);
        text[len] = '\n'; /* replaces the NUL; written without it */
        snprintf(path, sizeof path, "%s/adapter_config.json", dir);
        st = lethe_file_write_atomic(path, text, len + 1);
    }
done:
    free(ts);
    free(names);
    free(shapes);
    free(data);
    free(text);
    cJSON_Delete(j);
    return st;
}

/* The configuration of an adapter_config.json, checked for what lethe
 * implements. `where` labels messages. */
static lethe_status parse_config(const cJSON *j, const char *where, int n_layer,
                                 lethe_lora_config *c)
{
    const char *s;
    long long r, b, e;
    double alpha;
    int flag;
    lethe_status st = lethe_json_get_string(j, "peft_type", where, &s);
    if (st != LETHE_OK)
        return st;
    if (strcmp(s, "LORA"))
        return lethe_fail(LETHE_ERR_UNSUPPORTED, "%s: peft_type '%s': lethe reads LORA only",
                          where, s);
    if ((st = lethe_json_get_int(j, "r", where, &r)) != LETHE_OK ||
        (st = lethe_json_get_number(j, "lora_alpha", where, &alpha)) != LETHE_OK)
        return st;
    if (r <= 0 || r > 1 << 20)
        return lethe_fail(LETHE_ERR_FORMAT, "%s: r %lld: the rank must be positive", where, r);
    if ((st = lethe_json_opt_bool(j, "use_rslora", where, 0, &flag)) != LETHE_OK)
        return st;
    if (flag)
        return lethe_fail(LETHE_ERR_UNSUPPORTED,
                          "%s: use_rslora (scale alpha / sqrt(r)) is not implemented", where);
    if ((st = lethe_json_opt_string(j, "bias", where, "none", &s)) != LETHE_OK)
        return st;
    if (strcmp(s, "none"))
        return lethe_fail(LETHE_ERR_UNSUPPORTED, "%s: bias '%s': lethe adapters train no biases",
                          where, s);
    static const char *const patterns[] = {"rank_pattern", "alpha_pattern"};
    for (int i = 0; i < 2; i++) {
        const cJSON *p = cJSON_GetObjectItemCaseSensitive(j, patterns[i]);
        if (cJSON_IsObject(p) && p->child)
            return lethe_fail(LETHE_ERR_UNSUPPORTED, "%s: %s (per-module ranks or alphas) is "
                                                     "not implemented",
                              where, patterns[i]);
    }
    c->rank = (int)r;
    c->alpha = (float)alpha;
    c->targets = 0;

    /* lethe's own fields when present, else PEFT's list. */
    const cJSON *lt = cJSON_GetObjectItemCaseSensitive(j, "lethe_targets");
    const char **names = NULL;
    size_t n = 0;
    if (lt) {
        if ((st = lethe_json_get_strings(j, "lethe_targets", where, &names, &n)) != LETHE_OK)
            return st;
        for (size_t i = 0; i < n; i++) {
            int t = 0;
            while (t < N_TARGETS && strcmp(names[i], target_names[t]))
                t++;
            if (t == N_TARGETS) {
                st = lethe_fail(LETHE_ERR_FORMAT, "%s: lethe_targets: unknown module '%s'",
                                where, names[i]);
                break;
            }
            c->targets |= 1u << t;
        }
    } else {
        const cJSON *tm = cJSON_GetObjectItemCaseSensitive(j, "target_modules");
        if (cJSON_IsString(tm))
            return lethe_fail(LETHE_ERR_UNSUPPORTED,
                              "%s: target_modules is a regular expression ('%s'); lethe reads "
                              "a list of c_attn, c_proj, c_fc",
                              where, tm->valuestring);
        if ((st = lethe_json_get_strings(j, "target_modules", where, &names, &n)) != LETHE_OK)
            return st;
        for (size_t i = 0; i < n; i++) {
            if (!strcmp(names[i], "c_attn"))
                c->targets |= LETHE_LORA_ATTN_QKV;
            else if (!strcmp(names[i], "c_proj"))
                c->targets |= LETHE_LORA_ATTN_PROJ | LETHE_LORA_MLP_PROJ;
            else if (!strcmp(names[i], "c_fc"))
                c->targets |= LETHE_LORA_MLP_FC;
            else {
                st = lethe_fail(LETHE_ERR_UNSUPPORTED,
                                "%s: target module '%s': lethe adapts c_attn, c_proj and c_fc "
                                "only",
                                where, names[i]);
                break;
            }
        }
    }
    free(names);
    if (st != LETHE_OK)
        return st;
    if (!c->targets)
        return lethe_fail(LETHE_ERR_FORMAT, "%s: no target modules", where);

    c->layer_begin = 0;
    c->layer_end = n_layer;
    const cJSON *ll = cJSON_GetObjectItemCaseSensitive(j, "lethe_layers");
    const cJSON *lt2 = cJSON_GetObjectItemCaseSensitive(j, "layers_to_transform");
    if (ll) {
        if (!cJSON_IsArray(ll) || cJSON_GetArraySize(ll) != 2 ||
            !cJSON_IsNumber(cJSON_GetArrayItem(ll, 0)) ||
            !cJSON_IsNumber(cJSON_GetArrayItem(ll, 1)))
            return lethe_fail(LETHE_ERR_FORMAT, "%s: lethe_layers: expected [BEGIN, END]",
                              where);
        b = (long long)cJSON_GetArrayItem(ll, 0)->valuedouble;
        e = (long long)cJSON_GetArrayItem(ll, 1)->valuedouble;
    } else if (cJSON_IsNumber(lt2)) {
        b = (long long)lt2->valuedouble;
        e = b + 1;
    } else if (cJSON_IsArray(lt2) && cJSON_GetArraySize(lt2) > 0) {
        int m = cJSON_GetArraySize(lt2);
        b = (long long)cJSON_GetArrayItem(lt2, 0)->valuedouble;
        e = b + m;
        for (int i = 0; i < m; i++) {
            const cJSON *x = cJSON_GetArrayItem(lt2, i);
            if (!cJSON_IsNumber(x) || (long long)x->valuedouble != b + i)
                return lethe_fail(LETHE_ERR_UNSUPPORTED,
                                  "%s: layers_to_transform: lethe reads a contiguous ascending "
                                  "range of layers only",
                                  where);
        }
    } else {
        b = 0;
        e = n_layer;
    }
    if (b < 0 || b >= e || e > n_layer)
        return lethe_fail(LETHE_ERR_FORMAT,
                          "%s: layers [%lld, %lld) do not fit the base model's %d blocks", where,
                          b, e, n_layer);
    c->layer_begin = (int)b;
    c->layer_end = (int)e;
    return LETHE_OK;
}

/* Read one PEFT tensor of site s into dst (lethe's layout). */
static lethe_status load_tensor(const lethe_safetensors *st, const char *file,
                                const lethe_lora_site *s, int r, char which, float *dst)
{
    char name[NAME_MAX_LEN], bare[NAME_MAX_LEN];
    tensor_name(name, sizeof name, PREFIX, s, which);
    tensor_name(bare, sizeof bare, PREFIX_BARE, s, which);
    const lethe_st_tensor *t = lethe_safetensors_find(st, name);
    if (!t)
        t = lethe_safetensors_find(st, bare);
    if (!t)
        return lethe_fail(LETHE_ERR_NOT_FOUND,
                          "%s: no tensor named '%s': the adapter_config.json targets "
                          "%s of block %d",
                          file, name, target_names[target_index(s->target)], s->layer);
    size_t want0 = which == 'A' ? (size_t)r : (size_t)s->out;
    size_t want1 = which == 'A' ? (size_t)s->in : (size_t)r;
    if (t->rank != 2 || t->shape[0] != want0 || t->shape[1] != want1)
        return lethe_fail(LETHE_ERR_FORMAT,
                          "%s: tensor '%s' has shape (%zu, %zu); rank %d on the base model's "
                          "%s (%d, %d) needs (%zu, %zu) (an adapter for another model?)",
                          file, t->name, t->rank > 0 ? t->shape[0] : 0,
                          t->rank > 1 ? t->shape[1] : 0, r, target_names[target_index(s->target)],
                          s->in, s->out, want0, want1);
    float *tmp = malloc(sizeof *tmp * (t->numel ? t->numel : 1));
    if (!tmp)
        return lethe_fail(LETHE_ERR_NOMEM, "out of memory loading '%s'", t->name);
    lethe_status rc = lethe_safetensors_to_f32(st, t, tmp);
    if (rc == LETHE_OK) {
        if (which == 'A') /* lora_A (r, in) -> A (in, r) */
            for (int k = 0; k < r; k++)
                for (int x = 0; x < s->in; x++)
                    dst[(long)x * r + k] = tmp[(long)k * s->in + x];
        else /* lora_B (out, r) -> B (r, out) */
            for (int o = 0; o < s->out; o++)
                for (int k = 0; k < r; k++)
                    dst[(long)k * s->out + o] = tmp[(long)o * r + k];
    }
    free(tmp);
    return rc;
}

/* Whether `name` is one of l's tensor names (either prefix). */
static int expected_tensor(const lethe_lora *l, const char *name)
{
    char buf[NAME_MAX_LEN];
    for (int i = 0; i < l->n_sites; i++)
        for (int h = 0; h < 2; h++)
            for (int p = 0; p < 2; p++) {
                tensor_name(buf, sizeof buf, p ? PREFIX_BARE : PREFIX, &l->sites[i],
                            h ? 'B' : 'A');
                if (!strcmp(buf, name))
                    return 1;
            }
    return 0;
}

lethe_status lethe_lora_load(const char *dir, const lethe_gpt *g, lethe_lora **out)
{
    char cpath[4200], tpath[4200];
    *out = NULL;
    snprintf(cpath, sizeof cpath, "%s/adapter_config.json", dir);
    snprintf(tpath, sizeof tpath, "%s/adapter_model.safetensors", dir);
    cJSON *j = NULL;
    lethe_safetensors *st = NULL;
    lethe_lora *l = NULL;
    lethe_lora_config c;
    lethe_status rc = lethe_json_read(cpath, &j);
    if (rc == LETHE_OK && !cJSON_IsObject(j))
        rc = lethe_fail(LETHE_ERR_FORMAT, "%s: expected a JSON object", cpath);
    if (rc == LETHE_OK)
        rc = parse_config(j, cpath, g->cfg.n_layer, &c);
    if (rc == LETHE_OK)
        rc = lethe_safetensors_open(tpath, &st);
    if (rc == LETHE_OK && !(l = lora_new(g, &c)))
        rc = lethe_fail(LETHE_ERR_NOMEM, "out of memory loading %s", tpath);
    for (int i = 0; rc == LETHE_OK && i < l->n_sites; i++) {
        const lethe_lora_site *s = &l->sites[i];
        rc = load_tensor(st, tpath, s, c.rank, 'A', l->params + s->a_offset);
        if (rc == LETHE_OK)
            rc = load_tensor(st, tpath, s, c.rank, 'B', l->params + s->b_offset);
    }
    for (size_t i = 0; rc == LETHE_OK && i < st->n_tensors; i++)
        if (!expected_tensor(l, st->tensors[i].name))
            rc = lethe_fail(LETHE_ERR_FORMAT,
                            "%s: unexpected tensor '%s' (not among the targets of %s)", tpath,
                            st->tensors[i].name, cpath);
    cJSON_Delete(j);
    lethe_safetensors_free(st);
    if (rc != LETHE_OK) {
        lethe_lora_free(l);
        return rc;
    }
    *out = l;
    return LETHE_OK;
}
