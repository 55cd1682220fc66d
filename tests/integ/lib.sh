# Helpers for the command-line tests. Source it; call `finish` at the end.
# $LETHE is the binary under test. Each check counts one pass or one failure.
set -u
: "${LETHE:=build/lethe}"
PASSED=0 FAILED=0
SUITE=$(basename "$0" .sh)
TMP=$(mktemp -d)
trap 'rm -rf "$TMP"' EXIT
OUT="$TMP/out" ERR="$TMP/err"

pass() { PASSED=$((PASSED + 1)); }
fail() { FAILED=$((FAILED + 1)); echo "  FAIL [$SUITE] $*"; }

# expect CODE CMD...: run CMD, capturing stdout/stderr in $OUT/$ERR,
# and check the exit code.
# With LETHE_TEST_TIMES set, each command's wall time goes to stderr.
expect() {
    local want=$1; shift
    local t0=${LETHE_TEST_TIMES:+$(date +%s.%N)}
    "$@" >"$OUT" 2>"$ERR"; local rc=$?
    [ -z "$t0" ] || awk -v a="$t0" -v b="$(date +%s.%N)" -v c="${*:1:4}" 'BEGIN { printf "time %.2f %s\n", b - a, c }' >&2
    if [ "$rc" -eq "$want" ]; then pass; else
        fail "exit $rc, expected $want: $*"; sed 's/^/    /' "$ERR" | head -n 5; fi
}
# contains FILE TEXT: FILE holds TEXT (fixed string)
contains() {
    if grep -qF -- "$2" "$1"; then pass; else fail "$1 lacks '$2'"; sed 's/^/    /' "$1" | head -n 5; fi
}
# one_line FILE: FILE is exactly one line (a one-line error message)
one_line() {
    local n; n=$(wc -l <"$1")
    if [ "$n" -eq 1 ]; then pass; else fail "$1 has $n lines, expected 1"; sed 's/^/    /' "$1" | head -n 5; fi
}
# tofu_bench DIR FILE...: a small generated TOFU benchmark in DIR (20
# authors, 5 questions each, the general-knowledge sets cut to 12 questions
# to keep the tests short) and DIR/train.jsonl, the question-answer pairs of
# DIR/FILE... as documents laid out as the metrics read them.
tofu_bench() {
    local d=$1; shift
    expect 0 "$LETHE" data make authors --authors 20 --qa 5 --out "$d"
    for f in real_authors_perturbed.json world_facts_perturbed.json; do
        head -n 12 "$d/$f" >"$TMP/cut" && mv "$TMP/cut" "$d/$f"
    done
    /usr/bin/python3 - "$d" "$@" <<'EOF'
import json, sys
d = sys.argv[1]
with open(d + "/train.jsonl", "w") as out:
    for f in sys.argv[2:]:
        for line in open(d + "/" + f):
            r = json.loads(line)
            out.write(json.dumps({"text": "Question: %s\nAnswer: %s" % (r["question"], r["answer"])}) + "\n")
EOF
}
finish() { echo "$SUITE: $PASSED passed, $FAILED failed"; [ "$FAILED" -eq 0 ]; }
