#!/bin/bash
# t-json.sh - thin_check --json (docs/json.md): the document parses, has
# every member with its type, and says what the text report of the same
# check says (exit status, TRANSACTION_ID, METADATA_FREE_BLOCKS, the problem
# codes in order) on clean, leaking, damaged, snapshot-holding, missing and
# XML inputs; repairs are listed; stderr stays empty; -q with --json is a
# command-line mistake.
#
# Case functions are called through tcase, which shellcheck cannot see.
# shellcheck disable=SC2317
# shellcheck source-path=SCRIPTDIR source=../lib/testlib.sh
. "$(dirname "$0")/../lib/testlib.sh"

MKDAMAGE=$REPO/tools/mkdamage.py

# validate DOC: the schema of docs/json.md, member by member; prints
# "result exit tid free code,code,..." for the caller to compare.
validate() {
    python3 - "$1" <<'EOF'
import json, sys
d = json.load(open(sys.argv[1]))
def need(obj, key, types, where):
    if key not in obj:
        sys.exit("%s: no member %r" % (where, key))
    if not isinstance(obj[key], types):
        sys.exit("%s.%s: %r is not %s" % (where, key, obj[key], types))
    return obj[key]
N = type(None)
need(d, "schema", str, "doc") == "thinmeta/thin_check/1" or sys.exit("schema")
need(d, "tool", str, "doc") == "thin_check" or sys.exit("tool")
need(d, "version", str, "doc")
need(d, "input", str, "doc")
o = need(d, "options", dict, "doc")
for k in ("super_block_only", "skip_mappings", "metadata_snap", "ignore_non_fatal_errors",
          "repair", "clear_needs_check"):
    need(o, k, bool, "options")
for k in ("override_mapping_root", "override_details_root"):
    need(o, k, (int, N), "options")
res = need(d, "result", str, "doc")
if res not in ("clean", "repaired", "ignored", "problems", "changed", "error"):
    sys.exit("result %r" % res)
ex = need(d, "exit_status", int, "doc")
err = need(d, "error", (str, N), "doc")
if (res == "error") != (err is not None):
    sys.exit("error %r with result %r" % (err, res))
if (ex == 0) != (res in ("clean", "repaired", "ignored")):
    sys.exit("exit_status %d with result %r" % (ex, res))
sb = need(d, "superblock", (dict, N), "doc")
if sb is not None:
    for k in ("transaction_id", "metadata_free_blocks", "metadata_blocks", "data_blocks",
              "data_block_size", "time", "version"):
        need(sb, k, int, "superblock")
    need(sb, "needs_check", bool, "superblock")
    need(sb, "metadata_snap", (int, N), "superblock")
c = need(d, "counts", dict, "doc")
for k in ("fatal", "non_fatal", "info", "note"):
    need(c, k, int, "counts")
probs = need(d, "problems", list, "doc")
need(d, "problems_omitted", int, "doc")
for i, p in enumerate(probs):
    w = "problems[%d]" % i
    for k in ("code", "severity", "message", "text"):
        need(p, k, str, w)
    if p["severity"] not in ("fatal", "non-fatal", "info", "note"):
        sys.exit("%s.severity %r" % (w, p["severity"]))
    need(p, "fixable", bool, w)
    need(p, "in_snapshot", bool, w)
    for k in ("block_kind", "tree", "node_path"):
        need(p, k, (str, N), w)
    for k in ("block", "nr_blocks", "dev_id", "nr_devs"):
        need(p, k, (int, N), w)
    for k in ("expected", "actual", "n"):
        need(p, k, int, w)
    keys = need(p, "keys", (dict, N), w)
    if keys is not None:
        need(keys, "begin", int, w + ".keys")
        need(keys, "end", (int, N), w + ".keys")
    if p["message"] not in p["text"]:
        sys.exit("%s: message not in text" % w)
nf = sum(1 for p in probs if p["severity"] == "fatal")
if d["problems_omitted"] == 0 and nf != c["fatal"] and res != "changed":
    sys.exit("counts.fatal %d but %d fatal problems listed" % (c["fatal"], nf))
for r in need(d, "repairs", list, "doc"):
    isinstance(r, str) or sys.exit("repairs: %r" % r)
need(d, "needs_check_cleared", bool, "doc")
st = need(d, "stats", dict, "doc")
need(st, "complete", bool, "stats")
for k in ("devices", "snapshot_devices", "nodes", "mappings", "data_blocks_leaked",
          "metadata_blocks_leaked"):
    need(st, k, int, "stats")
print(res, ex, sb["transaction_id"] if sb else "-", sb["metadata_free_blocks"] if sb else "-",
      ",".join(p["code"] for p in probs if p["severity"] != "note") or "-")
EOF
}

# compare ARGS... (the image last): thin_check ARGS vs thin_check --json ARGS.
compare() {
    local want got rc_text tid free codes
    need_bin thin_check
    need_cmd python3
    run "$BIN/thin_check" "$@"
    rc_text=$RC
    tid=$(sed -n 's/^TRANSACTION_ID=//p' "$STDOUT")
    free=$(sed -n 's/^METADATA_FREE_BLOCKS=//p' "$STDOUT")
    codes=$(sed -n 's/^\[[a-z-]* \([a-z_0-9]*\)\].*/\1/p' "$STDERR" | paste -sd, -)
    want="$rc_text ${tid:--} ${free:--} ${codes:--}"
    run "$BIN/thin_check" --json "$@"
    [ "$RC" -eq "$rc_text" ] || fail "exit $RC with --json, $rc_text without"
    expect_stderr_empty
    cp "$STDOUT" "$T/doc.json"
    got=$(validate "$T/doc.json" 2>&1) || fail "bad document: $got"
    RESULT=${got%% *}
    got=${got#* }
    [ "$got" = "$want" ] || fail "--json says '$got', the text report '$want'"
}

good_image() {
    kernel_image 02-thins-snaps
}

t_clean() {
    good_image
    compare "$IMAGE"
    [ "$RESULT" = clean ] || fail "result $RESULT"
}
tcase clean-kernel-image t_clean

t_snapshot() {
    kernel_image 03-msnap-held
    compare "$IMAGE"
    compare -m "$IMAGE"
    python3 -c 'import json,sys; d=json.load(open(sys.argv[1])); assert d["options"]["metadata_snap"] and d["superblock"]["metadata_snap"] == 80' \
        "$T/doc.json" || fail "snapshot not in the document"
}
tcase held-snapshot t_snapshot

t_damage() {   # RECIPE RESULT
    good_image
    python3 "$MKDAMAGE" "$1" "$IMAGE" "$T/bad.img" >/dev/null 2>&1 || fail "recipe $1 failed"
    compare "$T/bad.img"
    [ "$RESULT" = "$2" ] || fail "result $RESULT, expected $2"
}
tcase damage-csum-details t_damage csum-details problems
tcase damage-csum-bottom-leaf t_damage csum-bottom-leaf problems
tcase damage-csum-sb t_damage csum-sb problems
tcase damage-under-data t_damage under-data problems
tcase damage-leak-data t_damage leak-data problems
tcase needs-check t_damage needs-check clean

t_ignored() {
    good_image
    python3 "$MKDAMAGE" leak-meta "$IMAGE" "$T/leak.img" >/dev/null 2>&1 || fail "recipe failed"
    compare --ignore-non-fatal-errors "$T/leak.img"
    [ "$RESULT" = ignored ] || fail "result $RESULT"
}
tcase leak-ignored t_ignored

t_repaired() {
    good_image
    python3 "$MKDAMAGE" leak-data "$IMAGE" "$T/leak.img" >/dev/null 2>&1 || fail "recipe failed"
    run "$BIN/thin_check" --json --auto-repair "$T/leak.img"
    [ "$RC" -eq 0 ] || fail "exit $RC"
    cp "$STDOUT" "$T/doc.json"
    validate "$T/doc.json" >"$T/v" 2>&1 || fail "bad document: $(cat "$T/v")"
    python3 -c 'import json,sys; d=json.load(open(sys.argv[1])); assert d["result"] == "repaired" and d["repairs"] and d["options"]["repair"], d' \
        "$T/doc.json" || fail "repairs not reported"
    run_ok "$BIN/thin_check" -q "$T/leak.img"
}
tcase leak-repaired t_repaired

t_error() {   # what
    need_bin thin_check
    case $1 in
        missing) IMAGE=$T/no-such-file ;;
        xml) printf '<superblock uuid="" time="0">%4096s</superblock>\n' "" >"$T/x.xml"; IMAGE=$T/x.xml ;;
        zeroes) truncate -s 1M "$T/zero.img"; IMAGE=$T/zero.img ;;
    esac
    compare "$IMAGE"
    case $1 in
        zeroes) [ "$RESULT" = problems ] || fail "result $RESULT" ;;
        *) [ "$RESULT" = error ] || fail "result $RESULT" ;;
    esac
}
tcase error-missing-input t_error missing
tcase error-xml-input t_error xml
tcase zeroed-input t_error zeroes

t_quiet_conflict() {
    good_image
    run_usage "$BIN/thin_check" --json -q "$IMAGE"
    expect_stdout_empty
    expect_stderr_match "cannot be used"
}
tcase json-with-quiet-is-misuse t_quiet_conflict

t_escaping() {
    good_image
    cp "$IMAGE" "$T/we\"ird	name.img"
    run_ok "$BIN/thin_check" --json "$T/we\"ird	name.img"
    python3 -c 'import json,sys; d=json.load(open(sys.argv[1])); assert d["input"].endswith("we\"ird\tname.img")' \
        "$STDOUT" || fail "the input name is not escaped right"
}
tcase file-name-escaped t_escaping

# ---------------------------------------------------------------- thin_ls --json

ALL_FIELDS=DEV,MAPPED_BLOCKS,EXCLUSIVE_BLOCKS,SHARED_BLOCKS,HIGHEST_BLOCK,MAPPED_SECTORS,EXCLUSIVE_SECTORS,SHARED_SECTORS,HIGHEST_SECTOR,MAPPED_BYTES,EXCLUSIVE_BYTES,SHARED_BYTES,HIGHEST_BYTE,MAPPED,EXCLUSIVE,SHARED,HIGHEST_MAPPED,TRANSACTION,CREATE_TIME,SNAP_TIME

# ls_compare FIELDS ARGS...: thin_ls --json [-o FIELDS] ARGS vs the grid.
ls_compare() {
    local fields=$1 o=()
    shift
    need_bin thin_ls
    need_cmd python3
    run_ok "$BIN/thin_ls" --no-headers -o "${fields:-$ALL_FIELDS}" "$@"
    cp "$STDOUT" "$T/grid"
    [ -n "$fields" ] && o=(-o "$fields")
    run_ok "$BIN/thin_ls" --json "${o[@]}" "$@"
    expect_stderr_empty
    cp "$STDOUT" "$T/ls.json"
    python3 - "$T/ls.json" "$T/grid" "${fields:-$ALL_FIELDS}" <<'PY' >"$T/cmp" 2>&1 || fail "$(cat "$T/cmp")"
import json, sys
d = json.load(open(sys.argv[1]))
grid = [l.split() for l in open(sys.argv[2]) if l.strip()]
fields = sys.argv[3].split(",")
assert d["schema"] == "thinmeta/thin_ls/1", d["schema"]
assert d["fields"] == fields, d["fields"]
assert isinstance(d["superblock"]["transaction_id"], int)
assert len(d["devices"]) == len(grid), (len(d["devices"]), len(grid))
for dev, row in zip(d["devices"], grid):
    assert list(dev) == [f.lower() for f in fields], list(dev)
    for f, cell in zip(fields, row):
        v = dev[f.lower()]
        if v is None:
            assert f.startswith("HIGHEST") and dev.get("mapped_blocks", 0) == 0, (f, dev)
            continue
        if f in ("MAPPED", "EXCLUSIVE", "SHARED", "HIGHEST_MAPPED"):
            assert isinstance(v, str) and v == cell, (f, v, cell)
        else:
            assert isinstance(v, int) and str(v) == cell, (f, v, cell)
PY
}

t_ls_all() {
    kernel_image 02-thins-snaps
    ls_compare "" "$IMAGE"
}
tcase ls-all-fields t_ls_all

t_ls_some() {
    kernel_image 03-msnap-held
    ls_compare DEV,MAPPED,SNAP_TIME "$IMAGE"
    ls_compare DEV,SHARED_BLOCKS,HIGHEST_BLOCK -m "$IMAGE"
    python3 -c 'import json,sys; d=json.load(open(sys.argv[1])); assert d["metadata_snap"] and d["superblock"]["transaction_id"] == 1' \
        "$T/ls.json" || fail "-m not in the document"
}
tcase ls-chosen-fields-and-snapshot t_ls_some

t_ls_empty_device() {
    need_bin thin_pool
    truncate -s 4M "$T/meta.img"
    "$BIN/thin_pool" "$T/meta.img" format --data-block-size 128 --nr-data-blocks 64 >/dev/null ||
        fail "thin_pool format failed"
    "$BIN/thin_pool" "$T/meta.img" create_thin 7 >/dev/null || fail "thin_pool create_thin failed"
    ls_compare "" "$T/meta.img"
    python3 -c 'import json,sys; d=json.load(open(sys.argv[1])); v=d["devices"][0]; assert v["dev"] == 7 and v["highest_block"] is None and v["mapped"] == "0b", v' \
        "$T/ls.json" || fail "an empty device is not null in its highest fields"
}
tcase ls-device-without-mappings t_ls_empty_device

t_ls_failure() {
    need_bin thin_ls
    good_image
    python3 "$MKDAMAGE" csum-bottom-leaf "$IMAGE" "$T/bad.img" >/dev/null || fail "recipe failed"
    run_fail "$BIN/thin_ls" --json "$T/bad.img"
    expect_stdout_empty
    expect_stderr_match 'block'
    run_fail "$BIN/thin_ls" --json "$T/missing"
    expect_stdout_empty
}
tcase ls-failure-no-document t_ls_failure

finish
