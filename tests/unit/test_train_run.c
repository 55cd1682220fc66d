/* The classifier and regressor runs through the library: a training run
 * and an unlearning run from it, each into a run directory. */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "../test.h"
#include "lethe/recipe.h"
#include "lethe/run.h"
#include "lethe/sha256.h"
#include "lethe/unlearn.h"

/* dir/name's SHA-256 into sha (empty when unreadable). */
static void file_sha(const char *dir, const char *name, char sha[65])
{
    char path[256];
    snprintf(path, sizeof path, "%s/%s", dir, name);
    if (lethe_sha256_file(path, sha) != LETHE_OK)
        sha[0] = '\0';
}

TEST(train_run_then_unlearn_run)
{
    char base[64], a[96], b[96], bad[96], u1[96], u2[96];
    char sha_a[65], sha_b[65], sha_u1[65], sha_u2[65], log_a[65];
    snprintf(base, sizeof base, "/tmp/lethe_trainrun_XXXXXX");
    CHECK(mkdtemp(base));
    snprintf(a, sizeof a, "%s/a", base);
    snprintf(b, sizeof b, "%s/b", base);
    snprintf(bad, sizeof bad, "%s/bad", base);
    snprintf(u1, sizeof u1, "%s/u1", base);
    snprintf(u2, sizeof u2, "%s/u2", base);

    /* the oracle without class 0: the same settings twice give the same files */
    lethe_train_run_cfg tc;
    lethe_train_run_defaults(&tc);
    tc.data = "iris", tc.out = a, tc.exclude = "class:0", tc.epochs = 3, tc.quiet = 1;
    lethe_train_run_result tr;
    CHECK_OK(lethe_train_run(&tc, &tr));
    CHECK(tr.task == LETHE_TASK_CLASSIFY && tr.excluded > 0 && tr.n_train > 0);
    CHECK(tr.train.epochs == 3 && tr.recipe.cfg.epochs == 3 && !strcmp(tr.recipe.model, "mlp"));
    CHECK(tr.train_scores.n == tr.n_train && tr.test_scores.n > 0);
    file_sha(a, "model.safetensors", sha_a);
    file_sha(a, "log.jsonl", log_a);
    CHECK(sha_a[0] && log_a[0]);
    tc.out = b;
    CHECK_OK(lethe_train_run(&tc, NULL));
    file_sha(b, "model.safetensors", sha_b);
    CHECK_MSG(!strcmp(sha_a, sha_b), "the same training run gave different models");
    /* an existing run is refused and left as it was */
    tc.out = a, tc.epochs = 1;
    CHECK_STATUS(lethe_train_run(&tc, NULL), LETHE_ERR_INVALID);
    file_sha(a, "model.safetensors", sha_b);
    CHECK(!strcmp(sha_a, sha_b));

    /* bad settings: refused, no directory left */
    tc.out = bad, tc.epochs = 3, tc.model = "linear", tc.widths = "8";
    CHECK_STATUS(lethe_train_run(&tc, NULL), LETHE_ERR_INVALID);
    CHECK(strstr(lethe_error_detail(), "widths") && !strstr(lethe_error_detail(), "--"));
    tc.model = NULL, tc.widths = NULL, tc.exclude = "class:0,1,2";
    CHECK_STATUS(lethe_train_run(&tc, NULL), LETHE_ERR_INVALID);
    CHECK(strstr(lethe_error_detail(), "no training sample"));
    tc.exclude = NULL, tc.patience = 2;
    CHECK_STATUS(lethe_train_run(&tc, NULL), LETHE_ERR_INVALID);
    CHECK(access(bad, F_OK) != 0);

    /* unlearning from a, with an lr over the method's default */
    lethe_unlearn_run_cfg uc;
    lethe_unlearn_run_defaults(&uc);
    const char *sets[] = {"epochs=2"};
    uc.run = a, uc.out = u1, uc.method = "ft", uc.forget = "random:0.2", uc.lr = 0.003;
    uc.sets = sets, uc.n_sets = 1, uc.quiet = 1;
    lethe_unlearn_run_result ur;
    CHECK_OK(lethe_unlearn_run_dir(&uc, &ur));
    CHECK(ur.kind == LETHE_TASK_CLASSIFY && !strcmp(ur.task, "iris") && ur.steps > 0);
    /* the run's data is the whole task: the oracle's exclusion is not the run's */
    CHECK(ur.n_forget > 0 && ur.forget.n == ur.n_forget &&
          ur.n_forget + ur.n_retain == tr.n_train + tr.excluded);
    lethe_run *run = NULL;
    CHECK_OK(lethe_run_load(u1, &run));
    const cJSON *hp = cJSON_GetObjectItem(cJSON_GetObjectItem(run->config, "unlearn"), "hparams");
    CHECK(cJSON_GetNumberValue(cJSON_GetObjectItem(hp, "lr")) == 0.003);
    CHECK(cJSON_GetNumberValue(cJSON_GetObjectItem(hp, "epochs")) == 2);
    lethe_run_free(run);
    uc.out = u2;
    CHECK_OK(lethe_unlearn_run_dir(&uc, NULL));
    file_sha(u1, "model.safetensors", sha_u1);
    file_sha(u2, "model.safetensors", sha_u2);
    CHECK(sha_u1[0] && !strcmp(sha_u1, sha_u2) && strcmp(sha_u1, sha_a));
    /* the parent is untouched */
    file_sha(a, "model.safetensors", sha_b);
    CHECK(!strcmp(sha_a, sha_b));

    /* an lr for a method without one, an output inside the source run, an
       unknown setting: refused, no directory left */
    uc.out = bad, uc.method = "fisher";
    CHECK_STATUS(lethe_unlearn_run_dir(&uc, NULL), LETHE_ERR_INVALID);
    CHECK(strstr(lethe_error_detail(), "fisher has no learning rate"));
    uc.method = "ft", uc.lr = 0, sets[0] = "nope=1";
    CHECK_STATUS(lethe_unlearn_run_dir(&uc, NULL), LETHE_ERR_INVALID);
    CHECK(access(bad, F_OK) != 0);
    char inside[128];
    snprintf(inside, sizeof inside, "%s/x", a);
    uc.out = inside, uc.n_sets = 0;
    CHECK_STATUS(lethe_unlearn_run_dir(&uc, NULL), LETHE_ERR_INVALID);
    CHECK(access(inside, F_OK) != 0);

    char cmd[128];
    snprintf(cmd, sizeof cmd, "rm -rf %s", base);
    CHECK(system(cmd) == 0);
}
