/* Linear run directories through the library: the fit writes a run, the
 * deletion protocol records the request (the callback comes once it is
 * durable, before the model changes) and replaces the model. */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>

#include "../test.h"
#include "lethe/ledger.h"
#include "lethe/linear.h"
#include "lethe/sha256.h"

typedef struct seen {
    char dir[64], model_sha[65];
    long calls, req, n, ledger_reqs;
} seen;

/* At the acknowledgement: the ledger holds the request, the model is the
 * parent still. */
static void recorded(long req, long n, void *ctx)
{
    seen *s = ctx;
    char path[128];
    lethe_ledger *l = NULL;
    s->calls++, s->req = req, s->n = n;
    if (lethe_ledger_read(s->dir, &l) == LETHE_OK)
        s->ledger_reqs = l->n_req;
    lethe_ledger_free(l);
    snprintf(path, sizeof path, "%s/model.safetensors", s->dir);
    lethe_sha256_file(path, s->model_sha);
}

TEST(linear_run_fit_then_forget)
{
    seen s = {0};
    snprintf(s.dir, sizeof s.dir, "/tmp/lethe_linrun_XXXXXX");
    CHECK(mkdtemp(s.dir));
    char ids[128], path[128], parent[65], after[65];
    snprintf(ids, sizeof ids, "%s.ids", s.dir);
    FILE *f = fopen(ids, "w");
    CHECK(f != NULL);
    fputs("3\n10\n", f);
    fclose(f);
    lethe_linear_fit_opts fo;
    lethe_linear_fit_defaults(&fo);
    fo.data = "boston";
    lethe_linear_run *r = NULL;
    CHECK_OK(lethe_linear_run_fit(s.dir, &fo, &r));
    CHECK(r->m->kind == LETHE_LINEAR_RIDGE && r->m->n == r->rows.n && r->excluded == 0);
    lethe_linear_run_free(r);
    snprintf(path, sizeof path, "%s/model.safetensors", s.dir);
    CHECK_OK(lethe_sha256_file(path, parent));
    /* nothing pending and no ids: nothing to do, nothing written */
    lethe_linear_forget_opts o = {.recorded = recorded, .ctx = &s};
    CHECK_OK(lethe_linear_run_forget(s.dir, &o, &r));
    CHECK(r->drop.n == 0 && s.calls == 0);
    lethe_linear_run_free(r);
    o.ids = ids, o.check = 1;
    CHECK_OK(lethe_linear_run_forget(s.dir, &o, &r));
    CHECK(s.calls == 1 && s.req == 1 && s.n == 2 && s.ledger_reqs == 1);
    CHECK_MSG(!strcmp(s.model_sha, parent), "the model changed before the acknowledgement");
    CHECK(r->drop.n == 2 && r->request == 1 && r->rel_diff < LETHE_LINEAR_CHECK_RTOL);
    lethe_linear_run_free(r);
    CHECK_OK(lethe_sha256_file(path, after));
    CHECK(strcmp(after, parent) != 0);
    /* the same ids again: refused, nothing recorded */
    CHECK_STATUS(lethe_linear_run_forget(s.dir, &o, &r), LETHE_ERR_INVALID);
    CHECK(strstr(lethe_error_detail(), "already removed") && s.calls == 1 && r == NULL);
    char cmd[200];
    snprintf(cmd, sizeof cmd, "rm -rf %s %s", s.dir, ids);
    CHECK(system(cmd) == 0);
}
