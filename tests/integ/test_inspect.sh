#!/usr/bin/env bash
# lethe inspect: text and JSON output for the committed fixtures, usage
# errors, and bad input (missing, empty, corrupt files) exiting 3.
. "$(dirname "$0")/lib.sh"
FIX=tests/ref/fixtures

expect 0 "$LETHE" inspect --help
contains "$OUT" "Usage: lethe inspect"
expect 2 "$LETHE" inspect
contains "$ERR" "missing the FILE"
expect 2 "$LETHE" inspect --frobnicate "$FIX/st_small.safetensors"
expect 2 "$LETHE" inspect "$FIX/st_small.safetensors" extra

# Text: every tensor with dtype, shape, sum and mean; "-" where the dtype
# cannot be converted; the parameter count and the metadata.
expect 0 "$LETHE" inspect "$FIX/st_small.safetensors"
contains "$OUT" "parameters: 14"
grep -Eq '^w +F32 +\[2, 3\] +21 +3\.5$' "$OUT" && pass || fail "text row for w"
grep -Eq '^b +F16 +\[3\] +1 +0\.3333333333$' "$OUT" && pass || fail "text row for b"
grep -Eq '^steps +I64 +\[\] +1000 +1000$' "$OUT" && pass || fail "text row for steps"
grep -Eq '^ids +U16 +\[4\] +- +-$' "$OUT" && pass || fail "text row for ids"
contains "$OUT" "  arch: mlp"
contains "$OUT" "  format: pt"

# JSON: one object, parsed and checked field by field.
expect 0 "$LETHE" inspect --json "$FIX/st_small.safetensors"
one_line "$OUT"
if /usr/bin/python3 - "$OUT" <<'PY'
import json, sys
d = json.load(open(sys.argv[1]))
t = {x["name"]: x for x in d["tensors"]}
assert d["parameters"] == 14, d["parameters"]
assert d["metadata"] == {"arch": "mlp", "format": "pt"}, d["metadata"]
assert [x["name"] for x in d["tensors"]] == ["b", "w", "steps", "ids"]
assert t["w"] == {"name": "w", "dtype": "F32", "shape": [2, 3], "sum": 21, "mean": 3.5}, t["w"]
assert t["b"]["sum"] == 1 and t["b"]["mean"] == 1 / 3, t["b"]
assert t["steps"]["shape"] == [] and t["steps"]["sum"] == 1000
assert t["ids"]["sum"] is None and t["ids"]["mean"] is None
PY
then pass; else fail "JSON output of st_small"; fi

# The mixed fixture: an empty tensor's mean is "-" / null, the rank-0 one a value.
expect 0 "$LETHE" inspect "$FIX/st_mixed.safetensors"
contains "$OUT" "parameters: 45"
grep -Eq '^empty +F32 +\[0, 3\] +0 +-$' "$OUT" && pass || fail "text row for empty"
grep -Eq '^bytes +U8 +\[2, 3\] +765 +127\.5$' "$OUT" && pass || fail "text row for bytes"
expect 0 "$LETHE" inspect --json "$FIX/st_mixed.safetensors"
contains "$OUT" '{"name":"empty","dtype":"F32","shape":[0,3],"sum":0,"mean":null}'
contains "$OUT" '{"name":"scalar","dtype":"F32","shape":[],"sum":3.5,"mean":3.5}'
contains "$OUT" '"flag","dtype":"BOOL","shape":[5],"sum":3,"mean":0.6}'

# Bad input: one line on stderr naming the file, exit 3.
bad_input() { # FILE TEXT
    expect 3 "$LETHE" inspect "$1"
    one_line "$ERR"
    contains "$ERR" "$1"
    contains "$ERR" "$2"
}
bad_input "$TMP/missing.safetensors" "cannot open"
: >"$TMP/empty.safetensors"
bad_input "$TMP/empty.safetensors" "file is empty"
head -c 300 "$FIX/st_small.safetensors" >"$TMP/truncated.safetensors"
bad_input "$TMP/truncated.safetensors" "truncated"
{ cat "$FIX/st_small.safetensors"; printf 'xyz'; } >"$TMP/trailing.safetensors"
bad_input "$TMP/trailing.safetensors" "3 trailing bytes"
printf '\x0f\x00\x00\x00\x00\x00\x00\x00{"a":{"dtype":"' >"$TMP/corrupt.safetensors"
bad_input "$TMP/corrupt.safetensors" "not valid JSON"
expect 3 "$LETHE" inspect --json "$TMP/corrupt.safetensors"
[ -s "$OUT" ] && fail "--json printed output for a corrupt file" || pass
finish
