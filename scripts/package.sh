#!/usr/bin/env bash
# Build the stamp-suite .deb (cargo-deb) and .rpm (cargo-generate-rpm) for
# this machine's architecture, into the cargo target directory
# (target/debian/*.deb and target/generate-rpm/*.rpm, or under
# $CARGO_TARGET_DIR when it is set).
#
# The packages install /usr/bin/stamp-suite, stamp-reflector and
# stamp-sender, stamp-reflector.service (not enabled), /etc/stamp/stamp.toml
# (a conffile), the man pages and shell completions of doc/, and create the
# system user `stamp` (packaging/debian/postinst, packaging/rpm/pre-install.sh).
#
# Check them with:  dpkg-deb -c target/debian/*.deb   and   rpm -qlp target/generate-rpm/*.rpm
set -euo pipefail
cd "$(dirname "$0")/.."

missing=()
command -v cargo-deb >/dev/null 2>&1 || missing+=(cargo-deb)
command -v cargo-generate-rpm >/dev/null 2>&1 || missing+=(cargo-generate-rpm)
if ((${#missing[@]})); then
    echo "==> installing ${missing[*]}"
    t0=$SECONDS
    cargo install --locked "${missing[@]}"
    echo "==> installed ${missing[*]} in $((SECONDS - t0)) s"
fi

target_dir="${CARGO_TARGET_DIR:-target}"

echo "==> checking that the generated docs (man pages, completions, usage.md) are current"
# A debug build: the checker's speed does not matter, and CI has built it.
cargo run --locked -q -p stamp-docgen -- --check

echo "==> building release binaries"
cargo build --release --locked -p stamp-suite

echo "==> stripping debug info (the release profile keeps line tables)"
# Both packagers take the binaries as they are in the target directory.
for b in stamp-suite stamp-reflector stamp-sender; do
    strip --strip-debug "$target_dir/release/$b"
done

echo "==> building the .deb"
# --no-strip: cargo-deb would strip fully when the profile has no debug
# info, so the two packages would differ; both get the binaries as built.
cargo deb -p stamp-suite --no-build --no-strip

echo "==> building the .rpm"
cargo generate-rpm -p bins/stamp-suite

echo "==> packages"
ls -l "$target_dir"/debian/*.deb "$target_dir"/generate-rpm/*.rpm
