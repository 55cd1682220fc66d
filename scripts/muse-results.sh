#!/usr/bin/env bash
# The runs behind docs/results-muse.md and docs/results-mia.md: MUSE's eight
# methods plus SimNPO and RMU through `lethe muse run` on news and books (one
# work directory, so each corpus's data, target and oracle are made once),
# the npo_gdr learning-rate sweep on news, then every membership attack of
# `lethe eval mia` on target and oracle (and npo_gdr on the forget set),
# with a reference model trained on retain2 (in neither); then the tables, as
# Markdown, on stdout.
#
#   scripts/muse-results.sh [WORK]          (default muse-work)
#
# Environment: LETHE (default build/lethe), CORPORA, METHODS, LRS to narrow
# the grid. Stages already in WORK are kept, so an interrupted run resumes.
set -euo pipefail
LETHE=${LETHE:-build/lethe}
WORK=${1:-muse-work}
CORPORA=${CORPORA-news books}
METHODS=${METHODS-ga ga_gdr ga_klr npo npo_gdr npo_klr taskvector whp simnpo rmu}
LRS=${LRS-1e-4 3e-4 5e-4 3e-3}

for c in $CORPORA; do
    for m in $METHODS; do
        if [ "$m" = npo ]; then # MUSE's NPO has no retain term; lethe's npo is npo_gdr
            "$LETHE" muse run --work "$WORK" --corpus "$c" --method npo --name npo --quiet \
                -- --alpha 0 >/dev/null
        else
            "$LETHE" muse run --work "$WORK" --corpus "$c" --method "$m" --quiet >/dev/null
        fi
    done
    if [ "$c" = news ]; then
        for lr in $LRS; do
            "$LETHE" muse run --work "$WORK" --corpus "$c" --method npo_gdr --name "npo_gdr-lr$lr" \
                --no-folds --quiet -- --lr "$lr" >/dev/null
        done
    fi
    # membership inference: a reference model on retain2 with the target's recipe
    W="$WORK/$c" D="$WORK/$c/data"
    if [ ! -e "$W/ref/model.safetensors" ]; then
        "$LETHE" train --model gpt --preset tiny --data "$D/raw/retain2.jsonl" --val 0 --shift \
            --epochs 200 --lr 3e-3 --tokenizer "$W/target/tokenizer.json" --quiet --force \
            --out "$W/ref" >/dev/null
    fi
    for who in target oracle npo_gdr; do
        for set in forget retain; do
            [ "$who" = npo_gdr ] && [ "$set" = retain ] && continue
            out="$W/mia-$who-$set"
            [ -e "$out/MIA_SUMMARY.json" ] || "$LETHE" eval mia --run "$W/$who" --ref "$W/ref" \
                --members "$D/privleak/$set.json" --nonmembers "$D/privleak/holdout.json" \
                --fit --out "$out" --quiet >/dev/null
        done
    done
done

/usr/bin/python3 - "$WORK" "$CORPORA" "$METHODS" "$LRS" <<'EOF'
import json, os, sys
work, corpora, methods, lrs = sys.argv[1], sys.argv[2].split(), sys.argv[3].split(), sys.argv[4].split()
keys = ["forget_verbmem_ROUGE", "forget_knowmem_ROUGE", "privleak", "retain_knowmem_ROUGE",
        "retain_verbmem_ROUGE"]

def load(*p):
    p = os.path.join(work, *p)
    return json.load(open(p)) if os.path.exists(p) else None

def fmt(x, p=1):
    return "-" if x is None else "%.*f" % (p, x)

def row(name, m, secs=None):
    return "| %s | %s |%s" % (name, " | ".join(fmt(m.get(k)) for k in keys),
                               "" if secs is None else " %.0f |" % secs)

for c in corpora:
    runs = [(m, load(c, m, "MUSE_PIPELINE.json")) for m in methods]
    runs = [(m, r) for m, r in runs if r]
    if not runs:
        continue
    print("### %s\n" % c)
    print("| model | VerbMem forget | KnowMem forget | PrivLeak | KnowMem retain | VerbMem retain | unlearn s |")
    print("|---|---|---|---|---|---|---|")
    first = runs[0][1]
    for who in ("target", "oracle"):
        print(row(who, first["models"][who], None) + " |")
    for m, r in runs:
        print(row(m, r["models"]["unlearned"], r["seconds"].get("%s-%s" % (c, m))))
    if c == "news":
        for lr in lrs:
            r = load(c, "npo_gdr-lr" + lr, "MUSE_PIPELINE.json")
            if r:
                print(row("npo_gdr, lr %s" % lr, r["models"]["unlearned"],
                          r["seconds"].get("%s-npo_gdr-lr%s" % (c, lr))))
    print()
    s = first["seconds"]
    print("Target %.0f s, oracle %.0f s.\n" % (s["%s-target" % c], s["%s-oracle" % c]))
    for fold in ("scal", "sust"):
        if fold not in first:
            continue
        print("#### %s: VerbMem forget / VerbMem retain / KnowMem retain / PrivLeak, folds 1-4\n" % fold)
        print("| method | fold 1 | fold 2 | fold 3 | fold 4 |")
        print("|---|---|---|---|---|")
        for m, r in runs:
            f = r[fold]
            print("| %s | %s |" % (m, " | ".join(
                "%s / %s / %s / %s" % (fmt(f[k].get("forget_verbmem_ROUGE")),
                                       fmt(f[k].get("retain_verbmem_ROUGE")),
                                       fmt(f[k].get("retain_knowmem_ROUGE")), fmt(f[k].get("privleak"), 0))
                for k in ("forget_1", "forget_2", "forget_3", "forget_4"))))
        print()
    print("#### %s: membership inference (members against privleak/holdout.json, reference model on retain2)\n" % c)
    attacks = ["loss", "zlib", "min_k", "min_k_plus_plus", "reference", "gradnorm"]
    print("| model | members | " + " | ".join(attacks) + " | exact mem. | extraction |")
    print("|---|---|" + "---|" * len(attacks) + "---|---|")
    for who in ("target", "oracle", "npo_gdr"):
        for st in ("forget", "retain"):
            m = load(c, "mia-%s-%s" % (who, st), "MIA_SUMMARY.json")
            if m:
                print("| %s | %s | %s | %.3f | %.3f |" % (who, st, " | ".join(
                    "%.3f (%.2f, %.2f)" % (m["mia_" + a], m["mia_%s_tpr_at_1fpr" % a],
                                           m["mia_%s_tpr_at_5fpr" % a]) for a in attacks),
                    m["exact_memorization"], m["extraction_strength"]))
    print()
EOF
