#!/usr/bin/env bash
# Feature matrix of the TLV plugins: for no plugin, each plugin alone and
# all plugins together,
#   * the facade's registry test (the registered set is exactly the enabled
#     plugins: catches a plugin crate that silently failed to link), and
#   * a build of the stamp-suite binary with only those plugins.
# The plugin list is read from plugins/all/Cargo.toml ([features] entries
# of the form `name = ["dep:…"]`), so a new plugin is covered once it has a
# facade feature; stamp-suite must have a feature of the same name.
#
# Quiet: one line per step; the tail of cargo's output only on failure.
# Bounded: each step is killed after FEATURE_MATRIX_STEP_TIMEOUT seconds
# (default 600). Exits non-zero if any step failed.
# Honours CARGO_TARGET_DIR like any cargo command.
set -uo pipefail
cd "$(dirname "$0")/.."

step_timeout=${FEATURE_MATRIX_STEP_TIMEOUT:-600}

mapfile -t plugins < <(
    awk '/^\[/{in_f = ($0 == "[features]")} in_f && /= *\["dep:/{print $1}' plugins/all/Cargo.toml
)
if [ "${#plugins[@]}" -eq 0 ]; then
    echo "feature-matrix: no plugin features found in plugins/all/Cargo.toml" >&2
    exit 2
fi
all=$(IFS=,; echo "${plugins[*]}")

log=$(mktemp)
trap 'rm -f "$log"' EXIT
failed=0
t0=$SECONDS

run() {
    local what=$1
    shift
    local t=$SECONDS
    if timeout "$step_timeout" "$@" >"$log" 2>&1; then
        printf 'ok    %-44s %4ss\n' "$what" $((SECONDS - t))
    else
        local rc=$?
        [ "$rc" -eq 124 ] && rc="timeout after ${step_timeout}s"
        printf 'FAIL  %-44s (%s)\n' "$what" "$rc"
        echo "      \$ $*"
        tail -n 40 "$log" | sed 's/^/      /'
        failed=1
    fi
}

echo "feature-matrix: plugins ${plugins[*]}"
for set in "" "${plugins[@]}" "$all"; do
    if [ -z "$set" ]; then
        label=none
        features=()
    else
        label=$set
        [ "$set" = "$all" ] && [ "${#plugins[@]}" -gt 1 ] && label=all
        features=(--features "$set")
    fi
    run "stamp-plugins [$label] test registered" \
        cargo test -q -p stamp-plugins --no-default-features "${features[@]}" --test registered
    run "stamp-suite [$label] build" \
        cargo build -q -p stamp-suite --no-default-features "${features[@]}"
done

echo "feature-matrix: $([ "$failed" -eq 0 ] && echo passed || echo FAILED) in $((SECONDS - t0))s"
exit "$failed"
