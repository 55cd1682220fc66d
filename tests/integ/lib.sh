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
expect() {
    local want=$1; shift
    "$@" >"$OUT" 2>"$ERR"; local rc=$?
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
finish() { echo "$SUITE: $PASSED passed, $FAILED failed"; [ "$FAILED" -eq 0 ]; }
