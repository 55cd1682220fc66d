/* ALU's chat model in process: a lethe GPT run answers the agents' messages
 * (lethe/guard_alu.h, lethe_alu_local_chat). */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "lethe/guard_alu.h"

void lethe_alu_local_init(lethe_alu_local *l, const lethe_gpt *g, const lethe_tokenizer_t *tok,
                          int32_t eot)
{
    *l = (lethe_alu_local){g, tok, eot, 256, 0};
}

/* The messages in lethe serve's chat template: a system message and "\n",
 * a user message as "Question: " ... "\nAnswer:", an assistant's as " "
 * ... "\n". NULL when out of memory. */
static char *render(const lethe_alu_msg *msgs, int n)
{
    char *b = NULL;
    size_t len = 0;
    FILE *f = open_memstream(&b, &len);
    if (!f)
        return NULL;
    for (int i = 0; i < n; i++) {
        const char *r = msgs[i].role;
        int sys = !strcmp(r, "system"), user = !strcmp(r, "user");
        fprintf(f, "%s%s%s", sys ? "" : user ? "Question: " : " ", msgs[i].content,
                sys ? "\n" : user ? "\nAnswer:" : "\n");
    }
    if (fclose(f)) {
        free(b);
        return NULL;
    }
    return b;
}

lethe_status lethe_alu_local_chat(void *ctx, const lethe_alu_msg *msgs, int n, char **reply,
                                  lethe_alu_usage *usage)
{
    lethe_alu_local *l = ctx;
    *reply = NULL;
    if (!l || !l->model || !l->tok || !msgs || n < 1 || l->max_tokens < 1)
        return lethe_fail(LETHE_ERR_INVALID, "alu: a model, a tokenizer, messages and "
                          "max_tokens >= 1 are needed");
    for (int i = 0; i < n; i++)
        if (!msgs[i].role || !msgs[i].content ||
            (strcmp(msgs[i].role, "system") && strcmp(msgs[i].role, "user") &&
             strcmp(msgs[i].role, "assistant")))
            return lethe_fail(LETHE_ERR_INVALID, "alu: message %d needs a content and the "
                              "role system, user or assistant", i);
    char *text = render(msgs, n);
    if (!text)
        return lethe_fail(LETHE_ERR_NOMEM, "out of memory");
    uint32_t *ids = NULL;
    size_t m = 0;
    lethe_status st = lethe_tokenizer_encode(l->tok, text, strlen(text), &ids, &m);
    free(text);
    if (st)
        return st;
    /* a prompt past the context keeps its last tokens, leaving room for a
     * reply of min(max_tokens, a quarter of the context) */
    int ctx_len = l->model->cfg.n_positions;
    int room = l->max_tokens < ctx_len / 4 ? l->max_tokens : ctx_len / 4;
    size_t keep = m, limit = (size_t)(ctx_len - (room > 0 ? room : 1));
    if (keep > limit) {
        keep = limit;
        __atomic_fetch_add(&l->truncated, 1, __ATOMIC_RELAXED);
    }
    int32_t *p = malloc(sizeof *p * (keep ? keep : 1));
    if (!p) {
        free(ids);
        return lethe_fail(LETHE_ERR_NOMEM, "out of memory");
    }
    for (size_t i = 0; i < keep; i++)
        p[i] = (int32_t)ids[m - keep + i];
    if (!keep)
        p[0] = l->eot, keep = 1;
    free(ids);
    lethe_gen_opts o;
    lethe_gen_defaults(&o);
    o.max_new = l->max_tokens < ctx_len - (int)keep ? l->max_tokens : ctx_len - (int)keep;
    o.eos = l->eot;
    lethe_gen_result r;
    st = lethe_gpt_generate(l->model, p, (int)keep, &o, &r);
    free(p);
    if (st)
        return st;
    size_t k = r.n > 0 ? (size_t)r.n : 0;
    if (k && r.tokens[k - 1] == l->eot)
        k--;
    uint32_t *u = malloc(sizeof *u * (k ? k : 1));
    unsigned char *b = NULL;
    size_t blen = 0;
    for (size_t i = 0; u && i < k; i++)
        u[i] = (uint32_t)r.tokens[i];
    st = u ? lethe_tokenizer_decode(l->tok, u, k, &b, &blen)
           : lethe_fail(LETHE_ERR_NOMEM, "out of memory");
    free(u);
    if (usage)
        usage->prompt_tokens = (long)keep, usage->completion_tokens = r.n;
    lethe_gen_result_free(&r);
    if (st)
        return st;
    size_t lead = strspn((char *)b, " \n"); /* as lethe serve's chat replies */
    memmove(b, b + lead, blen - lead + 1);
    *reply = (char *)b;
    return LETHE_OK;
}
