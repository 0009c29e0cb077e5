#!/usr/bin/env bash
# The project's test command (README "Test it"; .ci/run calls it).
# Makes sure the test-only Python peer (scapy's STAMP layer) is importable,
# builds the binaries the integration tests start, then runs every test.
set -euo pipefail
cd "$(dirname "$0")/.."
if ! python3 -c 'import scapy.contrib.stamp' >/dev/null 2>&1; then
    python3 -m pip install --quiet --disable-pip-version-check 'scapy>=2.6'
fi
cargo build --workspace --bins
cargo test --workspace
