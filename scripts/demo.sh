#!/usr/bin/env bash
# Build, start a reflector on loopback, run a sender against it, print the
# report, stop the reflector. Extra arguments go to the sender.
set -euo pipefail
cd "$(dirname "$0")/.."
cargo build --release --bins --quiet
bin=target/release
port=18862
"$bin/stamp-suite" -i -S 127.0.0.1 -o "$port" --stateful-reflector 2>/dev/null >/tmp/stamp-demo-reflector.txt &
reflector=$!
trap 'kill -INT $reflector 2>/dev/null || true' EXIT
sleep 0.3
"$bin/stamp-suite" -r 127.0.0.1 -p "$port" -c 20 -d 50 -R --ssid 1 "$@"
kill -INT "$reflector"
wait "$reflector" || true
trap - EXIT
echo
cat /tmp/stamp-demo-reflector.txt
