#!/usr/bin/env bash
# The installed library: every public header compiles on its own with only
# `pkg-config --cflags lethe`; liblethe.so exports exactly the lethe_* API
# that the headers declare; and a program built only against the installed
# headers and `pkg-config --libs lethe` runs a GPT forward and a SISA forget.
. "$(dirname "$0")/lib.sh"
BUILD=$(dirname "$LETHE")
PREFIX="$TMP/prefix"

expect 0 make --no-print-directory -s BUILD="$BUILD" PREFIX="$PREFIX" install-files
export PKG_CONFIG_PATH="$PREFIX/lib/pkgconfig"
CFLAGS_LETHE=$(pkg-config --cflags lethe) LIBS_LETHE=$(pkg-config --libs lethe)
if [ -n "$LIBS_LETHE" ]; then pass; else fail "pkg-config --libs lethe is empty"; fi

# A sanitizer build's library needs the sanitizer runtime in the program too.
SAN_FLAGS=
if ldd "$PREFIX/lib/liblethe.so" | grep -q libasan; then
    SAN_FLAGS="-fsanitize=address,undefined"
fi

# Each header alone, as the first and only include of a translation unit.
for h in "$PREFIX"/include/lethe/*.h; do
    name=$(basename "$h")
    printf '#include <lethe/%s>\nint lethe_header_check_%s;\n' "$name" "${name%.h}" >"$TMP/one.c"
    # shellcheck disable=SC2086
    expect 0 cc -std=c11 -Wall -Wextra -Wpedantic -Werror -fsyntax-only $CFLAGS_LETHE "$TMP/one.c"
done

# Exported symbols: only lethe_*, and every function the headers declare.
nm -D --defined-only "$PREFIX/lib/liblethe.so" | awk '{ print $3 }' | sort -u >"$TMP/exported"
grep -v '^lethe_' "$TMP/exported" >"$TMP/foreign"
if [ ! -s "$TMP/foreign" ]; then pass; else
    fail "liblethe.so exports $(wc -l <"$TMP/foreign") symbols outside lethe_*: $(head -n 5 "$TMP/foreign" | tr '\n' ' ')"
fi
grep -hoE '^[A-Za-z_][A-Za-z0-9_ *]*\blethe_[a-z0-9_]+\(' "$PREFIX"/include/lethe/*.h |
    grep -oE 'lethe_[a-z0-9_]+\($' | tr -d '(' | sort -u >"$TMP/declared"
comm -23 "$TMP/declared" "$TMP/exported" >"$TMP/hidden"
if [ -s "$TMP/declared" ] && [ ! -s "$TMP/hidden" ]; then pass; else
    fail "declared in a header but not exported: $(head -n 5 "$TMP/hidden" | tr '\n' ' ')"
fi

# The consumer program, against the installed shared library.
# shellcheck disable=SC2086
expect 0 cc -std=c11 -O1 $SAN_FLAGS -o "$TMP/consumer" tests/install/consumer.c $CFLAGS_LETHE \
    $LIBS_LETHE -lm
mkdir -p "$TMP/wd"
expect 0 env LD_LIBRARY_PATH="$PREFIX/lib" "$TMP/consumer" "$TMP/wd"
contains "$OUT" "gpt loss"
contains "$OUT" "sisa forget ok"
# It really is the installed shared library that ran.
expect 0 env LD_LIBRARY_PATH="$PREFIX/lib" ldd "$TMP/consumer"
contains "$OUT" "$PREFIX/lib/liblethe.so"
finish
