#!/usr/bin/env bash
# lethe stats: each subcommand on small inputs, against values computed once
# with scipy 1.10.1 / scikit-learn 1.2.1 / rouge-score's tokenizer + nltk 3.8;
# and bad inputs (exit 3, one line on stderr naming the file).
. "$(dirname "$0")/lib.sh"

# text output: "name  value" lines, values with 10 significant digits
printf '%s\n' 1 2 3 4 5 >"$TMP/a.txt"
printf '%s\n' 2.5 3.5 6 7 "" "" >"$TMP/b.txt" # blank lines at the end are fine

# ks_2samp([1..5], [2.5, 3.5, 6, 7]) = (0.5, 0.5634920634920635), exact
expect 0 "$LETHE" stats ks "$TMP/a.txt" "$TMP/b.txt"
contains "$OUT" "statistic  0.5"
contains "$OUT" "pvalue     0.5634920635"
contains "$OUT" "method     exact"
contains "$OUT" "n2         4"
expect 0 "$LETHE" stats ks --json "$TMP/a.txt" "$TMP/b.txt"
contains "$OUT" '"pvalue":	0.5634920634920635'
contains "$OUT" '"method":	"exact"'
# 10001 vs 301 values: asymptotic; scipy gives D = 0.4998500149985001,
# p = 5.518122454788372e-68
seq 1 10001 >"$TMP/big.txt"
seq 5000 2 5600 >"$TMP/mid.txt"
expect 0 "$LETHE" stats ks "$TMP/big.txt" "$TMP/mid.txt"
contains "$OUT" "statistic  0.499850015"
contains "$OUT" "pvalue     5.518122455e-68"
contains "$OUT" "method     asymptotic"

# roc_auc_score = 0.8640350877192983; interp(0.01 / 0.05, fpr, tpr) from roc_curve
printf '%s\n' 1 0 1 1 0 0 1 0 1 0 0 1 0 0 0 0 0 0 0 0 0 0 0 0 0 >"$TMP/labels.txt"
printf '%s\n' 9 9 8 7 7 7 5 4 4 2 1 1 0 0 -1 -1 -2 -3 -3 -3 -4 -5 -6 -7 -8 >"$TMP/scores.txt"
expect 0 "$LETHE" stats auc --labels "$TMP/labels.txt" --scores "$TMP/scores.txt"
contains "$OUT" "auc          0.8640350877"
contains "$OUT" "tpr_at_1fpr  0.03166666667"
contains "$OUT" "tpr_at_5fpr  0.1583333333"
contains "$OUT" "n_pos        6"
contains "$OUT" "n_neg        19"
expect 0 "$LETHE" stats auc --json --labels "$TMP/labels.txt" --scores "$TMP/scores.txt"
contains "$OUT" '"n_neg":	19'

# hmean([1, 4, 4]) = 2; wasserstein_distance([1..5], [2.5, 3.5, 6, 7]) = 1.75
printf '%s\n' 1 4 4 >"$TMP/h.txt"
expect 0 "$LETHE" stats hmean "$TMP/h.txt"
contains "$OUT" "hmean  2"
expect 0 "$LETHE" stats hmean --json "$TMP/h.txt"
contains "$OUT" '"hmean":	2'
printf '%s\n' 3 0 1 >"$TMP/zero.txt"
expect 0 "$LETHE" stats hmean "$TMP/zero.txt"
contains "$OUT" "hmean  0"
contains "$ERR" "zero.txt:2 is 0"
expect 0 "$LETHE" stats wasserstein "$TMP/a.txt" "$TMP/b.txt"
contains "$OUT" "wasserstein  1.75"
expect 0 "$LETHE" stats wasserstein --json "$TMP/a.txt" "$TMP/b.txt"
contains "$OUT" '"wasserstein":	1.75'

# ROUGE-L per line (ref, hyp): (P, R, F1) without / with stemming
#   the cat sat on the mat | The cat. Sat!          (1, .5, .6666666667) both
#   police killed the gunman | police kill the gunman (.75, .75, .75) / (1, 1, 1)
#   (empty) | foo                                    (0, 0, 0)
#   İstanbul café, generously | istanbul CAF generous (1/3, 1/4, 0.2857142857)
#                                                    / (2/3, 1/2, 0.5714285714)
printf '%s\n' "the cat sat on the mat" "police killed the gunman" "" \
    "İstanbul café, generously" >"$TMP/ref.txt"
printf '%s\n' "The cat. Sat!" "police kill the gunman" "foo" "istanbul CAF generous" >"$TMP/hyp.txt"
expect 0 "$LETHE" stats rouge --ref "$TMP/ref.txt" --hyp "$TMP/hyp.txt"
contains "$OUT" "1  1  0.5  0.6666666667"
contains "$OUT" "2  0.75  0.75  0.75"
contains "$OUT" "3  0  0  0"
contains "$OUT" "4  0.3333333333  0.25  0.2857142857"
contains "$OUT" "mean  0.5208333333  0.375  0.4255952381"
expect 0 "$LETHE" stats rouge --stem --ref "$TMP/ref.txt" --hyp "$TMP/hyp.txt"
contains "$OUT" "2  1  1  1"
contains "$OUT" "4  0.6666666667  0.5  0.5714285714"
contains "$OUT" "mean  0.6666666667  0.5  0.5595238095"
expect 0 "$LETHE" stats rouge --json --stem --ref "$TMP/ref.txt" --hyp "$TMP/hyp.txt"
contains "$OUT" '"recall":	[0.5, 1, 0, 0.5]'
contains "$OUT" '"mean_recall":	0.5'
contains "$OUT" '"stem":	true'

# help and usage errors
expect 0 "$LETHE" stats --help
for sub in ks auc rouge hmean wasserstein; do
    contains "$OUT" "  $sub "
done
for sub in ks auc rouge hmean wasserstein; do
    expect 0 "$LETHE" stats "$sub" --help
    contains "$OUT" "Usage: lethe stats $sub"
    expect 2 "$LETHE" stats "$sub" --no-such-flag
done
expect 2 "$LETHE" stats
expect 2 "$LETHE" stats median "$TMP/a.txt"
contains "$ERR" "unknown subcommand 'median'"
expect 2 "$LETHE" stats ks "$TMP/a.txt"
expect 2 "$LETHE" stats ks "$TMP/a.txt" "$TMP/b.txt" "$TMP/h.txt"
expect 2 "$LETHE" stats auc --labels "$TMP/labels.txt"
expect 2 "$LETHE" stats rouge --hyp "$TMP/hyp.txt"

# bad input: exit 3, one line naming the file and the problem
bad_input() { # bad_input TEXT-IN-MESSAGE CMD...
    local want=$1; shift
    expect 3 "$@"
    one_line "$ERR"
    contains "$ERR" "$want"
}
printf '1\n2\nabc\n' >"$TMP/word.txt"
: >"$TMP/empty.txt"
printf '1\n\n2\n' >"$TMP/gap.txt"
printf '1\ninf\n' >"$TMP/inf.txt"
bad_input "missing.txt: cannot open" "$LETHE" stats ks "$TMP/a.txt" "$TMP/missing.txt"
bad_input "word.txt:3: 'abc' is not a number" "$LETHE" stats ks "$TMP/word.txt" "$TMP/a.txt"
bad_input "empty.txt: no numbers" "$LETHE" stats wasserstein "$TMP/a.txt" "$TMP/empty.txt"
bad_input "gap.txt:2: blank line" "$LETHE" stats hmean "$TMP/gap.txt"
bad_input "inf.txt:2: 'inf' is not a finite number" "$LETHE" stats hmean "$TMP/inf.txt"
printf '1\n-2\n' >"$TMP/neg.txt"
bad_input "neg.txt:2: -2 is negative" "$LETHE" stats hmean "$TMP/neg.txt"
bad_input "has 5 labels but" "$LETHE" stats auc --labels "$TMP/a.txt" --scores "$TMP/scores.txt"
printf '%s\n' 0 1 0.5 1 0 >"$TMP/half.txt"
bad_input "half.txt:3: label 0.5 is not 0 or 1" \
    "$LETHE" stats auc --labels "$TMP/half.txt" --scores "$TMP/a.txt"
printf '%s\n' 1 1 1 1 1 >"$TMP/ones.txt"
bad_input "ones.txt: all 5 labels are 1" \
    "$LETHE" stats auc --labels "$TMP/ones.txt" --scores "$TMP/a.txt"
bad_input "empty.txt: no lines" "$LETHE" stats rouge --ref "$TMP/ref.txt" --hyp "$TMP/empty.txt"
bad_input "hyp.txt has 4 lines but" "$LETHE" stats rouge --ref "$TMP/hyp.txt" --hyp "$TMP/a.txt"
bad_input "missing.txt: cannot open" \
    "$LETHE" stats rouge --ref "$TMP/missing.txt" --hyp "$TMP/hyp.txt"
finish
