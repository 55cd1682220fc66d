#!/usr/bin/env bash
# lethe data make authors: the TOFU-style benchmark, its files, counts,
# manifest hashes, determinism, and bad arguments.
. "$(dirname "$0")/lib.sh"

FIX=tests/ref/fixtures/tofu

# rows FILE N: FILE has N lines
rows() {
    local n; n=$(wc -l <"$1")
    if [ "$n" -eq "$2" ]; then pass; else fail "$1 has $n rows, expected $2"; fi
}

expect 0 "$LETHE" data make --help
contains "$OUT" "Usage: lethe data make authors"
contains "$OUT" "(default 200)"
expect 0 "$LETHE" data --help
contains "$OUT" "data make authors"

# defaults: TOFU's sizes
D="$TMP/b"
expect 0 "$LETHE" data make authors --out "$D"
contains "$OUT" "200 authors x 20 QA (seed 0)"
rows "$D/full.json" 4000
rows "$D/forget01.json" 40
rows "$D/forget05.json" 200
rows "$D/forget10.json" 400
rows "$D/forget01_perturbed.json" 40
rows "$D/forget05_perturbed.json" 200
rows "$D/forget10_perturbed.json" 400
rows "$D/retain99.json" 3960
rows "$D/retain95.json" 3800
rows "$D/retain90.json" 3600
rows "$D/retain_perturbed.json" 400
rows "$D/holdout01.json" 40
rows "$D/holdout05.json" 200
rows "$D/holdout10.json" 400
rows "$D/world_facts_perturbed.json" 117
rows "$D/real_authors_perturbed.json" 45
rows "$D/idontknow.jsonl" 100
contains "$D/forget10_perturbed.json" '"paraphrased_answer":'
contains "$D/forget10_perturbed.json" '"paraphrased_question":'
contains "$D/forget10_perturbed.json" '"perturbed_answer":["'
contains "$D/world_facts_perturbed.json" '{"question":"Who delivered the State of the Union address of 1962?","answer":"John F. Kennedy","perturbed_answer":["'
contains "$D/real_authors_perturbed.json" '"answer":"The Pequod"'

# retainXX followed by forgetXX is full
for p in 01:99 05:95 10:90; do
    if cat "$D/retain${p#*:}.json" "$D/forget${p%:*}.json" | cmp -s - "$D/full.json"; then pass
    else fail "retain${p#*:} + forget${p%:*} != full"; fi
done
# forget rows are the perturbed rows without the extra fields
l1=$(head -n 1 "$D/forget01.json"); l1=${l1%\}}; l2=$(head -n 1 "$D/forget01_perturbed.json")
if [[ "$l2" == "$l1",\"paraphrased_answer\":* ]]; then pass
else fail "forget01 and forget01_perturbed start differently"; fi
# holdout questions are not in full
if cut -d'"' -f4 "$D/holdout10.json" | grep -qxFf - <(cut -d'"' -f4 "$D/full.json"); then
    fail "a holdout question is in full.json"; else pass; fi

# every file's sha256 and size are in the manifest
for f in "$D"/*.json "$D"/*.jsonl; do
    name=$(basename "$f")
    [ "$name" = manifest.json ] && continue
    contains "$D/manifest.json" "\"sha256\":	\"$(sha256sum "$f" | cut -d' ' -f1)\""
    contains "$D/manifest.json" "\"name\":	\"$name\""
done
contains "$D/manifest.json" '"seed":	0'
contains "$D/manifest.json" '"qa_per_author":	20'
if [ -x /usr/bin/python3 ]; then
    if /usr/bin/python3 - "$D" <<'EOF'
import json, sys, hashlib, os
d = sys.argv[1]
m = json.load(open(os.path.join(d, "manifest.json")))
assert m["authors"] == 200 and len(m["files"]) == 17
for f in m["files"]:
    data = open(os.path.join(d, f["name"]), "rb").read()
    assert hashlib.sha256(data).hexdigest() == f["sha256"], f["name"]
    assert len(data) == f["bytes"] and data.count(b"\n") == f["rows"], f["name"]
    if f["name"].endswith(".json"):
        rows = [json.loads(l) for l in data.splitlines()]
        assert all("question" in r and "answer" in r for r in rows), f["name"]
        if "perturbed" in f["name"] and f["name"].startswith(("forget", "retain")):
            assert all(len(r["perturbed_answer"]) == 5 for r in rows), f["name"]
EOF
    then pass; else fail "manifest.json does not match the files"; fi
fi

# deterministic: same seed same bytes, another seed other bytes
expect 0 "$LETHE" data make authors --out "$TMP/b2"
if cmp -s "$D/full.json" "$TMP/b2/full.json" && cmp -s "$D/manifest.json" "$TMP/b2/manifest.json"
then pass; else fail "same seed gave different files"; fi
expect 0 "$LETHE" data make authors --seed 1 --authors 100 --qa 5 --out "$TMP/b3"
if cmp -s "$D/full.json" "$TMP/b3/full.json"; then fail "seed 1 gave the same full.json"; else pass; fi
rows "$TMP/b3/full.json" 500
rows "$TMP/b3/forget10.json" 50
rows "$TMP/b3/retain_perturbed.json" 100

# author i does not depend on --authors
expect 0 "$LETHE" data make authors --authors 300 --out "$TMP/b4"
if head -n 4000 "$TMP/b4/full.json" | cmp -s - "$D/full.json"; then pass
else fail "the first 200 authors changed with --authors 300"; fi

# small runs: 10 authors give 1-author forget splits
expect 0 "$LETHE" data make authors --authors 10 --qa 2 --json --out "$TMP/small"
contains "$OUT" '"authors":	10'
rows "$TMP/small/forget01.json" 2
rows "$TMP/small/forget10.json" 2
rows "$TMP/small/retain_perturbed.json" 18

# the TOFU refusal file, copied as it is
expect 0 "$LETHE" data make authors --authors 10 --qa 1 --idk "$FIX/idontknow.jsonl" --out "$TMP/idk"
if cmp -s "$FIX/idontknow.jsonl" "$TMP/idk/idontknow.jsonl"; then pass; else fail "--idk copy differs"; fi
contains "$TMP/idk/manifest.json" "copied"

# refusing a non-empty directory; --force replaces
expect 3 "$LETHE" data make authors --out "$D"
one_line "$ERR"
contains "$ERR" "not empty"
contains "$ERR" "--force"
expect 0 "$LETHE" data make authors --force --out "$D"
if cmp -s "$D/full.json" "$TMP/b2/full.json"; then pass; else fail "--force rewrite differs"; fi
: >"$TMP/afile"
expect 3 "$LETHE" data make authors --out "$TMP/afile"
expect 3 "$LETHE" data make authors --idk "$TMP/nope" --out "$TMP/e1"
if [ -e "$TMP/e1/manifest.json" ]; then fail "a failed run left a manifest"; else pass; fi

# bad arguments: exit 2, with a hint
for bad in "--authors 9" "--authors 10001" "--authors abc" "--qa 0" "--qa 201" "--seed -1" \
           "--seed x" "--bogus"; do
    # shellcheck disable=SC2086
    expect 2 "$LETHE" data make authors $bad --out "$TMP/e2"
    contains "$ERR" "lethe data make --help"
done
expect 2 "$LETHE" data make authors --authors 9 --out "$TMP/e2"
contains "$ERR" "--authors must be a whole number from 10 to 10000"
expect 2 "$LETHE" data make authors --qa 500 --out "$TMP/e2"
contains "$ERR" "--qa must be a whole number from 1 to 200"
expect 2 "$LETHE" data make authors
contains "$ERR" "missing --out"
expect 2 "$LETHE" data make --out "$TMP/e2"
contains "$ERR" "missing the generator"
expect 2 "$LETHE" data make books --out "$TMP/e2"
contains "$ERR" "unknown generator 'books'"
expect 2 "$LETHE" data make authors extra --out "$TMP/e2"
if [ -e "$TMP/e2" ]; then fail "a usage error created the output directory"; else pass; fi

finish
