#!/bin/bash
# t-check-damage.sh - thin_check on damaged metadata: every recipe of
# fixtures/damage/recipes applied (tools/mkdamage.py) to each base image it
# names; our exit status and problem codes must be as the recipe says, the
# input untouched, --auto-repair must repair exactly the non-fatal cases
# (and leave the others byte-identical), and 1.1.0's verdict must be the one
# recorded - where it differs from ours the recipe says why.  1.1.0 runs on
# every base of a recipe with a NOTE, otherwise on its first base only
# (every base with SLOW=1: 1.1.0 takes at least half a second per run).
# shellcheck source=../lib/testlib.sh
. "$(dirname "$0")/../lib/testlib.sh"

RECIPES=$FIXTURES/damage/recipes
MKDAMAGE=$REPO/tools/mkdamage.py

# base_image NAME: sets IMAGE.
base_image() {
    local line kind
    line=$(awk -v n="$1" '$1 == "base" && $2 == n' "$RECIPES")
    [ -n "$line" ] || fail "no base $1 in $RECIPES"
    # shellcheck disable=SC2086
    set -- $line
    kind=$3
    if [ "$kind" = kernel ]; then
        kernel_image "$4"
    else
        local name=$2 which=$4 size=$5
        shift 5
        cached_image "$name" "$which" "$size" "$@"
    fi
}

trim() { sed 's/^ *//; s/ *$//' <<<"$1"; }

# verdict RC: 0 or fail
verdict() { [ "$1" -eq 0 ] && echo 0 || echo fail; }

# clean_after IMG: a re-check of IMG exits 0 and says nothing but the titles.
clean_after() {
    run "$BIN/thin_check" "$1"
    [ "$RC" -eq 0 ] || fail "the repaired image does not check clean (exit $RC)"
    if grep -q '^\[' "$STDERR"; then
        fail "the repaired image still has findings: $(grep '^\[' "$STDERR" | head -n 3)"
    fi
}

t_recipe() {   # RECIPE BASE EXIT CODES AUTO REF REFAUTO NOTE
    local rec=$1 base=$2 want=$3 codes=$4 auto=$5 ref=$6 refauto=$7 note=$8 code rrc
    need_bin thin_check
    need_cmd python3
    base_image "$base"
    python3 "$MKDAMAGE" "$rec" "$IMAGE" "$T/d.img" 2>"$T/mk.err" ||
        fail "mkdamage $rec failed on $base: $(cat "$T/mk.err")"
    remember_sum "$T/d.img"

    run "$BIN/thin_check" "$T/d.img"
    [ "$RC" -eq "$want" ] || fail "thin_check exited $RC, the recipe says $want"
    if [ "$codes" = - ]; then
        if grep -q '^\[\(fatal\|non-fatal\)' "$STDERR"; then
            fail "unexpected findings: $(grep '^\[' "$STDERR" | head -n 3)"
        fi
    else
        for code in $codes; do
            grep -q "^\[[a-z-]* $code\]" "$STDERR" || fail "problem code $code not reported"
        done
    fi
    expect_unchanged "$T/d.img"

    if [ "$auto" != - ]; then
        cp "$T/d.img" "$T/a.img"
        remember_sum "$T/a.img"
        run "$BIN/thin_check" --auto-repair "$T/a.img"
        [ "$RC" -eq "$auto" ] || fail "thin_check --auto-repair exited $RC, the recipe says $auto"
        if [ "$auto" -eq 0 ]; then
            clean_after "$T/a.img"
        else
            expect_unchanged "$T/a.img"
        fi
    fi

    if [ "$ref" != - ] || [ "$refauto" != - ]; then
        [ -x "$REF_1X/thin_check" ] || _missing "reference thin_check 1.1.0 not found in $REF_1X"
    fi
    if [ "$ref" != - ]; then
        "$REF_1X/thin_check" "$T/d.img" >/dev/null 2>"$T/ref.err"
        rrc=$?
        [ "$(verdict $rrc)" = "$ref" ] ||
            fail "1.1.0 thin_check exited $rrc, the recipe records $ref ($(head -c 200 "$T/ref.err"))"
        if [ "$(verdict "$want")" != "$ref" ] && [ -z "$note" ]; then
            fail "our verdict differs from 1.1.0's and the recipe does not say why"
        fi
    fi
    if [ "$refauto" != - ]; then
        cp "$T/d.img" "$T/r.img"
        "$REF_1X/thin_check" --auto-repair "$T/r.img" >/dev/null 2>&1
        rrc=$?
        [ "$(verdict $rrc)" = "$refauto" ] ||
            fail "1.1.0 thin_check --auto-repair exited $rrc, the recipe records $refauto"
        if [ "$auto" != - ] && [ "$(verdict "$auto")" != "$refauto" ] && [ -z "$note" ]; then
            fail "our --auto-repair verdict differs from 1.1.0's and the recipe does not say why"
        fi
    fi
}

while IFS= read -r line; do
    case $line in '' | '#'* | base*) continue ;; esac
    IFS='|' read -r rec bases want codes auto ref refauto note <<<"$line"
    rec=$(trim "$rec")
    note=$(trim "$note")
    first=1
    for b in $bases; do
        r=$(trim "$ref") ra=$(trim "$refauto")
        if [ $first = 0 ] && [ -z "$note" ] && [ "${SLOW:-0}" != 1 ]; then
            r=- ra=-
        fi
        first=0
        tcase "$rec@$b" t_recipe "$rec" "$b" "$(trim "$want")" "$(trim "$codes")" \
            "$(trim "$auto")" "$r" "$ra" "$note"
    done
done < <(grep -v '^[[:space:]]*$' "$RECIPES")

# Every recipe of the script has at least one line in the recipes file.
t_all_listed() {
    need_cmd python3
    local r missing=
    for r in $(python3 "$MKDAMAGE" --list | awk '{print $1}'); do
        grep -q "^$r |" "$RECIPES" || missing="$missing $r"
    done
    [ -z "$missing" ] || fail "recipes without expectations:$missing"
}
tcase recipes-all-listed t_all_listed

finish
