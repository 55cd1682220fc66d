# Helpers for the tests of lethe serve; source it after lib.sh. Servers
# started with `start` are killed when the script exits.
PIDS=()
trap 'for p in "${PIDS[@]}"; do kill -9 "$p" 2>/dev/null; done; rm -rf "$TMP"' EXIT
PY=/usr/bin/python3

# start NAME ARGS...: run lethe serve --port 0 ARGS in the background, its
# output in $TMP/NAME.out and .err; PORT and PID set once it says it is
# listening (at most 60 s)
start() {
    local name=$1; shift
    "$LETHE" serve --port 0 "$@" >"$TMP/$name.out" 2>"$TMP/$name.err" &
    PID=$!
    PIDS+=("$PID")
    for _ in $(seq 600); do
        PORT=$(sed -n 's|^lethe serve: listening on http://127.0.0.1:\([0-9]*\)$|\1|p' "$TMP/$name.out")
        [ -n "$PORT" ] && { pass; return 0; }
        kill -0 "$PID" 2>/dev/null || break
        sleep 0.1
    done
    fail "lethe serve $* did not start"; sed 's/^/    /' "$TMP/$name.err" | head -n 5
    finish; exit 1
}
# http CODE METHOD PATH [CURL ARGS...]: the status is CODE; the body in $OUT
http() {
    local want=$1 method=$2 path=$3; shift 3
    local got
    got=$(curl -s -o "$OUT" -w '%{http_code}' -X "$method" --max-time 60 "$@" "http://127.0.0.1:$PORT$path")
    if [ "$got" = "$want" ]; then pass; else
        fail "$method $path: status $got, expected $want"; head -c 300 "$OUT" | sed 's/^/    /'; echo; fi
}
# json EXPR: a Python expression over the body (as j) is true
json() {
    if $PY -c "import json,sys; j=json.load(open(sys.argv[1])); sys.exit(0 if ($1) else 1)" "$OUT"; then
        pass; else fail "body fails: $1"; head -c 300 "$OUT" | sed 's/^/    /'; echo; fi
}
# stop NAME: SIGTERM; the server exits 0 (under the sanitizers: no leak, no
# error) or its stderr is shown
stop() {
    kill -TERM "$PID"; wait "$PID"; local rc=$?
    if [ "$rc" = 0 ]; then pass; else
        fail "$1: exit $rc after SIGTERM, expected 0"; sed 's/^/    /' "$TMP/$1.err" | head -n 20; fi
}
# an OpenAI error envelope in $OUT
envelope() { contains "$OUT" '{"error":{"message":'; }
