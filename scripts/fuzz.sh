#!/usr/bin/env bash
# Fuzz the reflector, the sender and the config loader with cargo-fuzz.
#
#   scripts/fuzz.sh [SECONDS] [TARGET...]
#
# Runs each target (default: all) for SECONDS (default 10) with
# `cargo +nightly fuzz run <t> -- -max_total_time=SECONDS`, after seeding
# tests/fuzz/corpus/<target>/ with the UDP payloads of the captures in
# tests/fixtures/vectors/*.pcap (pcapng; the corpus directory is gitignored
# and generated here at every run; libFuzzer adds what it finds). Crashes
# land in tests/fuzz/artifacts/<target>/; replay one with
# `cargo +nightly fuzz run <target> <file>`.
#
# Needs the nightly toolchain (libFuzzer and sanitizers); installs cargo-fuzz
# when it is missing. CI does not run this: its short fuzz run is
# tests/e2e/fuzz_stable.rs on the stable toolchain, which runs the same six
# target functions (fuzz_targets/targets.rs) with the same seeds and a small
# mutational fuzzer for STAMP_FUZZ_SECS (default 4) each, beside the
# proptest properties of core/wire and core/engine (all run by
# scripts/test.sh). Use this script for long runs:
#   scripts/fuzz.sh 3600 reflector_step
set -euo pipefail
cd "$(dirname "$0")/.."

SECONDS_PER_TARGET="${1:-10}"
shift || true
ALL_TARGETS=(base_packet tlv_iter tlv_handlers reflector_step sender_reply config_loader)
if [ "$#" -gt 0 ]; then TARGETS=("$@"); else TARGETS=("${ALL_TARGETS[@]}"); fi

if ! rustup toolchain list | grep -q '^nightly'; then
    echo "fuzz.sh: the nightly toolchain is needed (rustup toolchain install nightly)" >&2
    exit 1
fi
if ! cargo +nightly fuzz --version >/dev/null 2>&1; then
    cargo install --locked cargo-fuzz
fi

# ---- Seed corpora from the captures -----------------------------------------
python3 - tests/fuzz/corpus tests/fixtures/vectors/*.pcap packaging/stamp.toml <<'PY'
import hashlib, os, struct, sys

out, inputs = sys.argv[1], sys.argv[2:]
pcaps = [p for p in inputs if p.endswith(".pcap")]
tomls = [p for p in inputs if p.endswith(".toml")]

def pcapng_packets(data):
    """(linktype, frame) of every packet of a pcapng file."""
    off, endian, links = 0, "<", []
    while off + 12 <= len(data):
        btype = struct.unpack_from(endian + "I", data, off)[0]
        if btype == 0x0A0D0D0A:  # section header: byte order
            endian = "<" if data[off + 8:off + 12] == b"\x4d\x3c\x2b\x1a" else ">"
            links = []
        blen = struct.unpack_from(endian + "I", data, off + 4)[0]
        if blen < 12 or off + blen > len(data):
            break
        body = data[off + 8:off + blen - 4]
        if btype == 1:  # interface description
            links.append(struct.unpack_from(endian + "H", body, 0)[0])
        elif btype == 6:  # enhanced packet
            ifid, _, _, caplen, _ = struct.unpack_from(endian + "IIIII", body, 0)
            yield (links[ifid] if ifid < len(links) else 1), body[20:20 + caplen]
        elif btype == 3:  # simple packet
            caplen = struct.unpack_from(endian + "I", body, 0)[0]
            yield (links[0] if links else 1), body[4:4 + caplen]
        off += blen

def udp_payload(link, f):
    if link == 1:  # Ethernet
        et, p = struct.unpack_from(">H", f, 12)[0], 14
        while et in (0x8100, 0x88A8):
            et, p = struct.unpack_from(">H", f, p + 2)[0], p + 4
    elif link == 0:  # BSD loopback
        et, p = {2: 0x0800, 24: 0x86DD, 28: 0x86DD, 30: 0x86DD}.get(struct.unpack_from("<I", f, 0)[0], 0), 4
    elif link == 113:  # Linux cooked
        et, p = struct.unpack_from(">H", f, 14)[0], 16
    elif link in (101, 228, 229):  # raw IP
        et, p = (0x0800 if f[0] >> 4 == 4 else 0x86DD), 0
    else:
        return None
    if et == 0x0800 and f[p + 9] == 17:
        p += (f[p] & 0x0F) * 4
    elif et == 0x86DD and f[p + 6] == 17:
        p += 40
    else:
        return None
    ulen = struct.unpack_from(">H", f, p + 4)[0]
    return f[p + 8:p + ulen]

def tlvs(area):
    off = 0
    while off + 4 <= len(area):
        flags, code, n = area[off], area[off + 1], struct.unpack_from(">H", area, off + 2)[0]
        if off + 4 + n > len(area):
            return
        yield flags, code, area[off + 4:off + 4 + n]
        off += 4 + n

payloads = []
for path in pcaps:
    with open(path, "rb") as fh:
        data = fh.read()
    for link, frame in pcapng_packets(data):
        try:
            p = udp_payload(link, frame)
        except (struct.error, IndexError):
            p = None
        if p:
            payloads.append(p)

seeds = {t: set() for t in ("base_packet", "tlv_iter", "tlv_handlers",
                            "reflector_step", "sender_reply", "config_loader")}
for p in payloads:
    seeds["base_packet"].add(p)
    for base in (44, 112):
        if len(p) > base:
            seeds["tlv_iter"].add(p[base:])
    for sel in (0, 1, 2, 8, 16 | 2, 4, 32 | 1, 32 | 8 | 4 | 1):
        seeds["reflector_step"].add(bytes([sel]) + p)
    for sel in (0, 1, 2, 4):
        seeds["sender_reply"].add(bytes([sel]) + p)
    for base in (44, 112):
        for flags, code, value in tlvs(p[base:]):
            seeds["tlv_handlers"].add(bytes([0, code, flags]) + struct.pack(">H", len(value)) + value)
for path in tomls:
    with open(path, "rb") as fh:
        text = fh.read()
    seeds["config_loader"].update({b"\x00" + text, b"\x01" + text})
seeds["config_loader"].update({
    b"\x01stateful_reflector = true\nmax_pps = 100\nreflector_rate_burst = 10\n",
    b"\x00remote_addr = [\"192.0.2.1\"]\ncount = 5\nsend_delay = \"10ms\"\n",
})

for target, items in seeds.items():
    d = os.path.join(out, target)
    os.makedirs(d, exist_ok=True)
    for item in items:
        name = hashlib.sha1(item).hexdigest()
        with open(os.path.join(d, name), "wb") as fh:
            fh.write(item)
    print(f"corpus {target}: {len(items)} seeds from {len(payloads)} captured payloads")
PY

# ---- Run ---------------------------------------------------------------------
cd tests/fuzz
status=0
for t in "${TARGETS[@]}"; do
    echo "=== fuzz $t for ${SECONDS_PER_TARGET}s"
    if ! cargo +nightly fuzz run "$t" "corpus/$t" -- \
        -max_total_time="$SECONDS_PER_TARGET" -max_len=9216 -print_final_stats=1; then
        echo "fuzz.sh: $t FAILED (see tests/fuzz/artifacts/$t/)" >&2
        status=1
    fi
done
exit "$status"
