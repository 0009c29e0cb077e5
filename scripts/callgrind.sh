#!/usr/bin/env bash
# Instructions per reflected packet, counted by callgrind (deterministic,
# unlike wall-clock figures on a shared machine): the in-process Reflector
# loop of `stamp-bench --callgrind-loop MODE N`, run for two N; the
# difference divided by the extra packets removes start-up and set-up.
#
#   scripts/callgrind.sh [BENCH_BINARY]
#
# Modes: open (44 octets, no TLV), tlv (every RFC 8972 TLV), auth
# (authenticated, a Timestamp Information TLV and the HMAC TLV).
set -euo pipefail
cd "$(dirname "$0")/.."
target="${CARGO_TARGET_DIR:-target}"
bench="${1:-$target/release/stamp-bench}"
if [ ! -x "$bench" ]; then
    cargo build --release -p stamp-bench
fi
command -v valgrind >/dev/null || { echo "valgrind is not installed" >&2; exit 1; }
n1=2000
n2=12000
count() {
    valgrind --tool=callgrind --callgrind-out-file=/dev/null "$bench" --callgrind-loop "$1" "$2" 2>&1 >/dev/null \
        | sed -n 's/.*Collected : \([0-9]*\).*/\1/p'
}
printf '%-6s %14s\n' mode 'instr/packet'
for mode in open tlv auth; do
    a=$(count "$mode" "$n1")
    b=$(count "$mode" "$n2")
    printf '%-6s %14d\n' "$mode" $(( (b - a) / (n2 - n1) ))
done
