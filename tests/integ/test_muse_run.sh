#!/usr/bin/env bash
# lethe muse run: the pipeline on a small MUSE news corpus; every stage
# stamped, the summary the evaluations' own; a rerun keeps every stage,
# options after -- rerun the unlearn stages and what reads them only; the
# scal and sust folds (sust in sequence); bad input exits 2 or 3, a failing
# stage 1 naming its log and leaving no directory.
. "$(dirname "$0")/lib.sh"
PY=/usr/bin/python3
W=$TMP/wd D=$TMP/wd/news/data
export OMP_NUM_THREADS=1
P=("$LETHE" muse run --work "$W" --forget 3 --retain 3 --holdout 2 --max-words 1000
   --target-steps 4 --verbmem-max-new 8 --knowmem-max-new 4)

expect 0 "$LETHE" muse run --help
contains "$OUT" "--target-epochs"
expect 0 "${P[@]}" --no-folds -- --epochs 1
for row in target oracle unlearned "stages: news-data" "wrote $W/news/npo_gdr/MUSE_PIPELINE.json"; do
    contains "$OUT" "$row"
done
for s in news-data news-target news-oracle news-npo_gdr news-eval-target news-eval-oracle \
    news-eval-npo_gdr; do
    [ -s "$W/logs/$s.log" ] && pass || fail "no log for $s"
done
for d in data target oracle npo_gdr target/eval oracle/eval npo_gdr/eval; do
    [ -s "$W/news/$d/pipeline.json" ] && pass || fail "no stamp in $d"
done
# the stamps record the recipe: target on forget and retain1, oracle on
# retain1, every document trained on, the windows shifted each epoch; the
# unlearn stage on the raw forget text with retain1 at a constant rate
$PY - "$W" "$D" <<'EOF' && pass || fail "the stamps do not record the recipe"
import json, sys
w, d = sys.argv[1:]
st = lambda p: json.load(open("%s/news/%s/pipeline.json" % (w, p)))
t, o, u = st("target"), st("oracle"), st("npo_gdr")
assert t["stage"] == "train" and t["settings"]["data"] == d + "/raw/forget.jsonl," + d + "/raw/retain1.jsonl", t
assert o["settings"]["data"] == d + "/raw/retain1.jsonl" and o["settings"]["steps"] == 4, o
assert t["settings"]["val"] == 0 and t["settings"]["seed"] == o["settings"]["seed"], t
assert t["settings"]["shift"] == 1 and o["settings"]["shift"] == 1, t
s = u["settings"]
assert u["stage"] == "unlearn" and s["method"] == "npo" and s["name"] == "npo_gdr", u
assert s["forget"] == d + "/raw/forget.jsonl" and s["retain"] == d + "/raw/retain1.jsonl", s
assert s["constant"] == 1 and s["warmup"] == 0 and abs(s["lr"] - 1e-3) < 1e-9 and s["epochs"] == 1, s
e = st("npo_gdr/eval")["settings"]
assert e["run"] == w + "/news/npo_gdr" and e["oracle"] == w + "/news/oracle", e
assert e["verbmem_max_new"] == 8 and e["knowmem_max_new"] == 4, e
EOF
contains "$W/logs/news-npo_gdr.log" '"format":"text"'
# the corpus is a stage: the sizes given, as data make writes them
expect 0 "$LETHE" data make muse-news --forget 3 --retain 3 --holdout 2 --max-words 1000 \
    --out "$TMP/by-hand" --quiet
cmp -s "$TMP/by-hand/manifest.json" "$D/manifest.json" && pass ||
    fail "the data stage's corpus differs from data make's"
contains "$D/pipeline.json" '"max_words":	1000'
# the summary: the numbers are the evaluations' own
$PY - "$W" <<'EOF' && pass || fail "MUSE_PIPELINE.json does not match the evaluations"
import json, sys
w = sys.argv[1]
s = json.load(open(w + "/news/npo_gdr/MUSE_PIPELINE.json"))
assert s["corpus"] == "news" and s["method"] == "npo_gdr" and s["unlearn_args"] == ["--epochs", "1"], s
assert "scal" not in s and "sust" not in s, s
for name, d in [("target", "target"), ("oracle", "oracle"), ("unlearned", "npo_gdr")]:
    m = s["models"][name]
    e = json.load(open("%s/news/%s/eval/MUSE_SUMMARY.json" % (w, d)))
    assert m["run"] == w + "/news/" + d, m
    for k in ("forget_verbmem_ROUGE", "forget_knowmem_ROUGE", "retain_knowmem_ROUGE", "privleak"):
        assert m[k] == e[k], (name, k, m[k], e[k])
for k in ("news-target", "news-oracle", "news-npo_gdr", "news-eval-npo_gdr"):
    assert s["seconds"][k] > 0, k
EOF

# a rerun keeps everything and changes nothing
cp "$W/news/npo_gdr/model.safetensors" "$TMP/before"
expect 0 "${P[@]}" --no-folds -- --epochs 1
n=$(grep -o "(kept)" "$OUT" | wc -l)
[ "$n" -eq 7 ] && pass || fail "a rerun kept $n of 7 stages: $(cat "$OUT")"
cmp -s "$TMP/before" "$W/news/npo_gdr/model.safetensors" && pass || fail "rerun changed the model"
# other unlearn options rerun the unlearn stage and its evaluation only
expect 0 "${P[@]}" --no-folds --quiet -- --epochs 2
[ ! -s "$ERR" ] && pass || fail "--quiet printed: $(head -n 3 "$ERR")"
for s in news-target news-oracle news-eval-target news-eval-oracle; do
    grep -q " $s [0-9.]* s (kept)" "$OUT" && pass || fail "$s not kept"
done
for s in news-npo_gdr news-eval-npo_gdr; do
    grep -q " $s [0-9.]* s" "$OUT" && ! grep -q " $s [0-9.]* s (kept)" "$OUT" && pass ||
        fail "$s was not rerun"
done

# the folds: scal from the target, sust in sequence from the unlearned model
expect 0 "${P[@]}" --quiet --method ga -- --epochs 1
$PY - "$W" "$D" <<'EOF' && pass || fail "the folds are not MUSE's"
import json, sys
w, d = sys.argv[1:]
st = lambda p: json.load(open("%s/news/%s/pipeline.json" % (w, p)))["settings"]
s = json.load(open(w + "/news/ga/MUSE_PIPELINE.json"))
for k in ("scal", "sust"):
    assert list(s[k]) == ["forget_1", "forget_2", "forget_3", "forget_4"], s[k]
    assert s[k]["forget_1"] == s["models"]["unlearned"], s[k]
    for f in (2, 3, 4):
        u = st("ga-%s%d" % (k, f))
        assert u["forget"] == "%s/%s/forget_%d.jsonl" % (d, k, f), u
        prev = w + "/news/" + ("target" if k == "scal" else "ga" if f == 2 else "ga-sust%d" % (f - 1))
        assert u["run"] == prev, (k, f, u["run"])
        e = json.load(open("%s/news/ga-%s%d/eval/MUSE_SUMMARY.json" % (w, k, f)))
        assert s[k]["forget_%d" % f]["retain_knowmem_ROUGE"] == e["retain_knowmem_ROUGE"]
EOF
for s in news-target news-oracle news-eval-target news-eval-oracle; do
    grep -q " $s [0-9.]* s (kept)" "$OUT" && pass || fail "$s not kept for ga"
done
contains "$OUT" "sust:"

# books at the default sizes: chapters cut to 800 words, enough cloze
# questions for the in-context examples (400 would leave retain1 too few)
expect 0 "$LETHE" muse run --work "$W" --corpus books --method ga --target-steps 2 \
    --verbmem-max-new 4 --knowmem-max-new 2 --quiet -- --epochs 1
$PY - "$W" <<'EOF' && pass || fail "books did not take its default cut"
import json, sys
d = json.load(open(sys.argv[1] + "/books/data/pipeline.json"))["settings"]
assert d["corpus"] == "books" and d["max_words"] == 800 and d["forget"] == 10, d
s = json.load(open(sys.argv[1] + "/books/ga/MUSE_PIPELINE.json"))
assert "scal" not in s and s["models"]["unlearned"]["retain_verbmem_ROUGE"] is not None, s
EOF

# bad input
expect 2 "$LETHE" muse run --work "$W" --data "$D" --corpus bogus
one_line "$ERR"
expect 2 "$LETHE" muse run --work "$W" --forget 0
one_line "$ERR"
expect 2 "$LETHE" muse run --work "$W" --data "$D" --method sft
expect 2 "$LETHE" muse run --work "$W" --data "$D" stray
expect 2 "$LETHE" muse run --work "$W" --data "$D" --target-epochs 0
expect 2 "$LETHE" muse
expect 3 "$LETHE" muse run --work "$W" --data "$D" --method idknll --quiet
one_line "$ERR"
expect 3 "$LETHE" muse run --work "$W" --data "$TMP/none" --quiet
one_line "$ERR"
expect 2 "${P[@]}" --quiet --name bad -- --lr -1
one_line "$ERR"
contains "$ERR" "--lr -1 is out of range"
# a stage whose library call fails: exit 1 naming it, its error and its log
expect 1 "${P[@]}" --no-folds --quiet --name bad2 -- --epochs 1 --retain-loss embed
one_line "$ERR"
contains "$ERR" "news-bad2 failed: npo: the embed retain loss is RMU's only"
contains "$ERR" "$W/logs/news-bad2.log"
[ ! -e "$W/news/bad2" ] && pass || fail "a failed stage left its directory"

finish
