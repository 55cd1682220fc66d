/* GradDiff: GradAscent plus a retain term (NLL; MUSE's ga_klr: KL). */
#include "lm_common.h"

const lethe_lm_method_def lm_graddiff = {
    "graddiff", LETHE_LM_GRADDIFF,
    "gradient ascent plus a retain term (GradDiff; ga_gdr, ga_klr: KL retain)",
    "removal",
    0, 0, 0, NULL, NULL, lm_ascent_forget};
