/* SISA exactness: deleting ids gives shard files byte-identical to training
 * from scratch without them; and the ledger's durability rules. */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "../test.h"
#include "lethe/ledger.h"
#include "lethe/recipe.h"
#include "lethe/sha256.h"
#include "lethe/sisa.h"

static char root[] = "/tmp/lethe_sisa_XXXXXX";

static lethe_sisa *make(const char *name, const lethe_rows *excl)
{
    char dir[256];
    snprintf(dir, sizeof dir, "%s/%s", root, name);
    lethe_task_opts o = {.limit = 400};
    lethe_dataset *tr, *te;
    lethe_recipe r;
    char spec[512];
    lethe_sisa *s = NULL;
    if (lethe_task_load("digits", &o, &tr, &te) != LETHE_OK)
        return NULL;
    lethe_recipe_default(tr, "mlp", &r);
    r.cfg.epochs = 4;
    lethe_recipe_spec(&r, tr, spec, sizeof spec);
    lethe_status st = lethe_sisa_create(dir, "digits", &o, spec, &r.cfg, 3, 4, 7, LETHE_AGG_VOTE,
                                        excl, NULL, 0, &s);
    if (st == LETHE_OK)
        st = lethe_sisa_sync(s);
    lethe_dataset_free(tr);
    lethe_dataset_free(te);
    if (st != LETHE_OK) {
        lethe_sisa_free(s);
        return NULL;
    }
    return s;
}

/* Every shard's model file equal between a and b. */
static int same_models(const lethe_sisa *a, const lethe_sisa *b)
{
    int same = a->e.shards == b->e.shards;
    for (int k = 0; same && k < a->e.shards; k++) {
        char pa[4200], pb[4200], ha[65], hb[65];
        lethe_ensemble_model_path(&a->e, k, pa, sizeof pa);
        lethe_ensemble_model_path(&b->e, k, pb, sizeof pb);
        same = lethe_sha256_file(pa, ha) == LETHE_OK && lethe_sha256_file(pb, hb) == LETHE_OK &&
               !strcmp(ha, hb);
    }
    return same;
}

/* The first training row of shard 0 in slice `slice`. */
static long row_in(const lethe_sisa *s, int slice)
{
    for (long i = 0; i < s->e.train->n; i++)
        if (s->e.shard_of[i] == 0 && s->e.slice_of[i] == slice)
            return i;
    return -1;
}

static void check_forget(lethe_sisa *base, const char *name, const long *rows, long n)
{
    lethe_rows del = {n, (long *)rows};
    long req;
    CHECK_OK(lethe_ensemble_request(&base->e, &del, &req));
    CHECK_OK(lethe_sisa_sync(base));
    lethe_rows all = {0, malloc(sizeof(long) * (size_t)base->e.train->n)};
    for (long i = 0; i < base->e.train->n; i++)
        if (base->e.deleted[i])
            all.row[all.n++] = i;
    lethe_sisa *ref = make(name, &all);
    CHECK(ref != NULL);
    CHECK_MSG(ref && same_models(base, ref), "%s: forget differs from retraining", name);
    lethe_sisa_free(ref);
    free(all.row);
}

TEST(sisa_forget_equals_retraining)
{
    CHECK(mkdtemp(root));
    lethe_sisa *s = make("base", NULL);
    CHECK(s != NULL);
    if (!s)
        return;
    CHECK(s->trained_slices == 12);
    /* One id in the last slice: only that shard's last slice is retrained. */
    long last = row_in(s, 3), first = row_in(s, 0);
    check_forget(s, "last", &last, 1);
    CHECK_MSG(s->trained_slices == 1, "retrained %ld slices", s->trained_slices);
    /* One id in the first slice: that shard retrains every slice. */
    check_forget(s, "first", &first, 1);
    CHECK(s->trained_slices == 4);
    /* A batch over several shards, in one request. */
    long batch[5];
    for (int k = 0; k < 5; k++)
        batch[k] = 11 + 37 * k;
    check_forget(s, "batch", batch, 5);
    /* Deleting an id again is refused and records nothing. */
    lethe_rows again = {1, &last};
    long req, before = s->e.ledger->n_records;
    CHECK_STATUS(lethe_ensemble_request(&s->e, &again, &req), LETHE_ERR_INVALID);
    CHECK(strstr(lethe_error_detail(), "already deleted by request 1"));
    CHECK(s->e.ledger->n_records == before);
    /* Reopening replays the ledger: nothing to train, same files. */
    lethe_sisa *t;
    CHECK_OK(lethe_sisa_open(s->e.dir, &t));
    CHECK_OK(lethe_sisa_sync(t));
    CHECK(t->trained_slices == 0 && same_models(s, t));
    CHECK(lethe_ledger_pending(t->e.ledger) == 0 && t->e.ledger->n_req == 3);
    /* Two handles of one directory (a long-running process and another
     * writer): each request first reads what the other recorded. */
    long a = 200, b = 201;
    lethe_rows ra = {1, &a}, rb = {1, &b};
    CHECK(!s->e.deleted[a] && !s->e.deleted[b]);
    CHECK_OK(lethe_ensemble_request(&s->e, &ra, &req));
    CHECK(req == 4);
    CHECK_OK(lethe_ensemble_request(&t->e, &rb, &req));
    CHECK_MSG(req == 5, "the second handle's request is number %ld", req);
    CHECK_STATUS(lethe_ensemble_request(&t->e, &ra, &req), LETHE_ERR_INVALID);
    CHECK_OK(lethe_sisa_sync(s));
    CHECK(s->e.ledger->n_req == 5 && lethe_ledger_pending(s->e.ledger) == 0 && s->e.deleted[b]);
    lethe_sisa_free(t);
    lethe_sisa_free(s);
    char cmd[300];
    snprintf(cmd, sizeof cmd, "rm -rf %s", root);
    CHECK(system(cmd) == 0);
}

TEST(ledger_records_replay_and_damage)
{
    char path[] = "/tmp/lethe_ledger_XXXXXX";
    int fd = mkstemp(path);
    close(fd);
    unlink(path);
    lethe_ledger *l;
    CHECK_OK(lethe_ledger_open(path, &l));
    CHECK(l->n_req == 0);
    uint64_t ids[3] = {5, 9, 12};
    long req;
    CHECK_OK(lethe_ledger_receive(l, ids, 3, &req));
    CHECK(req == 1 && lethe_ledger_pending(l) == 1 && lethe_ledger_find(l, 9) == 1);
    CHECK_OK(lethe_ledger_receive(l, ids, 1, &req));
    CHECK_OK(lethe_ledger_applied(l, 1));
    CHECK_OK(lethe_ledger_applied(l, 1)); /* idempotent: no second record */
    CHECK(l->n_records == 3);
    lethe_ledger_free(l);
    CHECK_OK(lethe_ledger_open(path, &l));
    CHECK(l->n_req == 2 && l->req[0].state == LETHE_REQ_APPLIED && l->req[1].n_ids == 1);
    CHECK(l->req[0].n_ids == 3 && l->req[0].ids[2] == 12 && lethe_ledger_pending(l) == 1);
    long good = l->valid_bytes;
    lethe_ledger_free(l);
    /* A torn final write is dropped, and the next record replaces it. */
    FILE *f = fopen(path, "a");
    fputs("{\"req\":3,\"state\":\"rec", f);
    fclose(f);
    CHECK_OK(lethe_ledger_open(path, &l));
    CHECK(l->torn && l->n_req == 2 && l->valid_bytes == good);
    CHECK_OK(lethe_ledger_applied(l, 2));
    lethe_ledger_free(l);
    CHECK_OK(lethe_ledger_open(path, &l));
    CHECK(!l->torn && l->n_records == 4 && lethe_ledger_pending(l) == 0);
    lethe_ledger_free(l);
    /* A flipped byte inside a complete record is damage, named. */
    f = fopen(path, "r+");
    fseek(f, 10, SEEK_SET);
    fputc('7', f);
    fclose(f);
    CHECK_STATUS(lethe_ledger_open(path, &l), LETHE_ERR_FORMAT);
    CHECK(strstr(lethe_error_detail(), "record 1: checksum mismatch"));
    unlink(path);
}

/* A shard whose every sample is left out has no model: it does not vote,
 * and naming it, or every shard being so, is refused with a reason. */
TEST(sisa_empty_shard_has_no_model)
{
    char dir[] = "/tmp/lethe_sise_XXXXXX", saved[sizeof root];
    CHECK(sizeof dir == sizeof root && mkdtemp(dir));
    memcpy(saved, root, sizeof root); /* make() builds under root */
    memcpy(root, dir, sizeof root);
    lethe_sisa *s = make("all", NULL);
    CHECK(s != NULL);
    lethe_rows zero = {0, malloc(sizeof(long) * (size_t)s->e.train->n)};
    for (long i = 0; i < s->e.train->n; i++)
        if (s->e.shard_of[i] == 0)
            zero.row[zero.n++] = i;
    lethe_sisa_free(s);
    s = make("nozero", &zero);
    CHECK(s != NULL && zero.n > 0);
    CHECK(lethe_ensemble_live(&s->e) == 2 && lethe_ensemble_samples(&s->e, 0) == 0);
    long n = s->e.test->n;
    float *y = malloc(sizeof(float) * (size_t)n * 10);
    CHECK_STATUS(lethe_ensemble_predict(&s->e, 0, s->e.test, NULL, y), LETHE_ERR_FAILED);
    CHECK(strstr(lethe_error_detail(), "shard 0 has no model"));
    CHECK_OK(lethe_ensemble_predict(&s->e, -1, s->e.test, NULL, y));
    int votes_ok = 1;
    for (long i = 0; i < n; i++) {
        float v = 0;
        for (int c = 0; c < 10; c++)
            v += y[i * 10 + c];
        votes_ok &= v == 2.0f;
    }
    CHECK_MSG(votes_ok, "an untrained shard voted");
    /* deleting every remaining sample leaves no model */
    lethe_rows rest = {0, zero.row};
    for (long i = 0; i < s->e.train->n; i++)
        if (s->e.shard_of[i] != 0)
            rest.row[rest.n++] = i;
    long req;
    CHECK_OK(lethe_ensemble_request(&s->e, &rest, &req));
    CHECK_OK(lethe_sisa_sync(s));
    CHECK(lethe_ensemble_live(&s->e) == 0);
    CHECK_STATUS(lethe_ensemble_predict(&s->e, -1, s->e.test, NULL, y), LETHE_ERR_FAILED);
    CHECK(strstr(lethe_error_detail(), "every training sample has been deleted"));
    free(y);
    free(zero.row);
    lethe_sisa_free(s);
    memcpy(root, saved, sizeof root);
    char cmd[300];
    snprintf(cmd, sizeof cmd, "rm -rf %s", dir);
    CHECK(system(cmd) == 0);
}
