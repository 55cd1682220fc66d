#!/usr/bin/env bash
# Every method of 'lethe unlearn --list' on every data set: it runs on the
# tasks it applies to (leaving a model that predicts) and refuses the others
# with a one-line message and exit 3, leaving nothing behind. With
# LETHE_MATRIX_QUICK=1 (make sanitize sets it) the two largest data sets,
# fashion-mnist and us-births, are left out: every method still meets a
# classifier and a regressor.
. "$(dirname "$0")/lib.sh"

expect 0 "$LETHE" unlearn --list
methods=$(awk 'NR > 1 && !/^ / {print $1 ":" $2}' "$OUT")
[ "$(wc -w <<<"$methods")" -ge 14 ] && pass || fail "the method list is short: $methods"

classify="fashion-mnist digits iris wine breast-cancer"
regress="diabetes boston cps-wages us-births"
if [ "${LETHE_MATRIX_QUICK:-0}" = 1 ]; then
    classify="digits iris wine breast-cancer" regress="diabetes boston cps-wages"
fi
for data in $classify $regress; do
    kind=regress forget=random:0.2
    case " $classify " in *" $data "*) kind=classify forget=class:1 ;; esac
    limit=()
    [ "$data" = fashion-mnist ] && limit=(--limit 800)
    expect 0 "$LETHE" train --data "$data" "${limit[@]}" --epochs 3 --out "$TMP/$data" --quiet
    for mt in $methods; do
        m=${mt%%:*} tasks=${mt#*:}
        out="$TMP/$data-$m"
        if [ "$tasks" = both ] || [ "$tasks" = "$kind" ]; then
            expect 0 "$LETHE" unlearn --run "$TMP/$data" --method "$m" --forget "$forget" \
                --out "$out" --quiet --json
            contains "$OUT" "\"method\":\"$m\""
            expect 0 "$LETHE" predict --run "$out" --split test --json
        else
            expect 3 "$LETHE" unlearn --run "$TMP/$data" --method "$m" --forget "$forget" \
                --out "$out" --quiet
            one_line "$ERR"
            contains "$ERR" "only"
            [ ! -e "$out/model.safetensors" ] && pass || fail "$m on $data left a model"
        fi
    done
done
finish
