#!/usr/bin/env python3
"""Interoperability check: scapy's STAMP layer (scapy.contrib.stamp, an
implementation this project did not write) against a running stamp-suite
reflector.

    python3 tests/interop/scapy_stamp.py ADDR PORT

Builds Session-Sender test packets with scapy (base packet + RFC 8972 TLVs),
sends them over a plain UDP socket, parses every reply with scapy's
Session-Reflector class and checks its fields. Prints one line per check
("PASS name" or "FAIL name: detail"), then "SUMMARY checks=N failures=M".
Exit status: 0 all passed, 1 a check failed, 2 usage error, 3 scapy missing.

The reflector must run stateful (--stateful-reflector): the Follow-Up
Telemetry and Direct Measurement checks rely on per-session state, and no
other client may talk to it meanwhile.

Two quirks of scapy's layer, worked around here:
* STAMPTestTLV names its flag bits "UMIRRRRR" LSB-first, so the RFC 8972 U
  flag (the most significant bit, 0x80) shows up as "R"; flags are built and
  checked as integers.
* Its NTP TimeStampField takes seconds since 1900 (it does no epoch
  conversion), and its Length field is not filled in automatically.
"""

import random
import socket
import struct
import sys
import time

try:
    from scapy.contrib.stamp import (
        STAMPSessionReflectorTestUnauthenticated as Reply,
        STAMPSessionSenderTestUnauthenticated as Request,
        STAMPTestTLV as TLV,
    )
except ImportError as e:  # the Rust test turns this into a failure
    print(f"scapy STAMP layer not importable: {e}", file=sys.stderr)
    sys.exit(3)

U, M, I = 0x80, 0x40, 0x20
NTP_EPOCH_OFFSET = 2_208_988_800
SSID = 0x2A5C
COUNT = 4
SENDER_TTL = 200
DSCP_SENT, ECN_SENT = 10, 1  # AF11, ECT(1) on the requests
DSCP_ASKED = 46  # EF asked for the replies (CoS DSCP1)
UNKNOWN_TYPE = 200  # unassigned (First Come First Served range)
IP_RECVTOS = getattr(socket, "IP_RECVTOS", 13)

checks = 0
failures = 0


def check(name, ok, detail=""):
    global checks, failures
    checks += 1
    if ok:
        print(f"PASS {name}")
    else:
        failures += 1
        print(f"FAIL {name}: {detail}")
    return ok


def expect(name, got, want):
    return check(name, got == want, f"got {got!r}, want {want!r}")


def tlv(t, value, flags=U):
    """One TLV (or sub-TLV: same format, RFC 8972 §4.2.1) built by scapy."""
    return TLV(flags=flags, type=t, len=len(value), value=value)


def location_value():
    # Ports zero, then the generic request sub-TLVs Source MAC (1),
    # Destination IP (4), Source IP (7) with zeroed values (RFC 8972 §4.2).
    subs = [tlv(1, bytes(8)), tlv(4, bytes(16)), tlv(7, bytes(16))]
    return bytes(4) + b"".join(bytes(s) for s in subs)


def request(seq, padding):
    cos = bytes([DSCP_ASKED << 2, 0, 0, 0])
    dm = struct.pack("!III", seq + 1, 0, 0)  # S_TxC: packets sent so far
    tlvs = [
        tlv(2, location_value()),
        tlv(3, bytes(4)),  # Timestamp Information
        tlv(4, cos),  # Class of Service
        tlv(5, dm),  # Direct Measurement
        tlv(6, bytes([1 << 4, 1, 0, 0])),  # Access Report: 3GPP, available
        tlv(7, bytes(16)),  # Follow-Up Telemetry
        tlv(UNKNOWN_TYPE, b"\xab" * 8),  # nobody knows this one
        tlv(1, padding),  # Extra Padding
    ]
    return Request(
        seq=seq,
        ts=time.time() + NTP_EPOCH_OFFSET,
        ssid=SSID,
        tlv_objects=tlvs,
    )


def open_socket(addr):
    family = socket.AF_INET6 if ":" in addr else socket.AF_INET
    s = socket.socket(family, socket.SOCK_DGRAM)
    s.settimeout(2.0)
    tos = DSCP_SENT << 2 | ECN_SENT
    if family == socket.AF_INET:
        s.setsockopt(socket.IPPROTO_IP, socket.IP_TTL, SENDER_TTL)
        s.setsockopt(socket.IPPROTO_IP, socket.IP_TOS, tos)
        s.setsockopt(socket.IPPROTO_IP, IP_RECVTOS, 1)
    else:
        s.setsockopt(socket.IPPROTO_IPV6, socket.IPV6_UNICAST_HOPS, SENDER_TTL)
        s.setsockopt(socket.IPPROTO_IPV6, socket.IPV6_TCLASS, tos)
        s.setsockopt(socket.IPPROTO_IPV6, socket.IPV6_RECVTCLASS, 1)
    return s, family


def recv_reply(s, family):
    """(payload, TOS / Traffic Class of the reply or None)."""
    data, anc, _, _ = s.recvmsg(9216, socket.CMSG_SPACE(4))
    tos = None
    for level, kind, val in anc:
        if family == socket.AF_INET and level == socket.IPPROTO_IP and kind == socket.IP_TOS:
            tos = val[0]
        if level == socket.IPPROTO_IPV6 and kind == socket.IPV6_TCLASS:
            tos = struct.unpack("=i", val[:4])[0]
    return data, tos


def tlvs_of(reply):
    return [(int(t.flags), t.type, t.len, bytes(t.value)) for t in reply.tlv_objects]


def check_location(i, value, local, peer, v6):
    dst_port, src_port = struct.unpack("!HH", value[:4])
    expect(f"{i}.location.dst_port", dst_port, peer[1])
    expect(f"{i}.location.src_port", src_port, local[1])
    subs = []
    rest = value[4:]
    while rest:
        sub = TLV(rest)
        subs.append((int(sub.flags), sub.type, sub.len, bytes(sub.value)))
        rest = rest[4 + sub.len:]
    want_dst = 6 if v6 else 5
    want_src = 9 if v6 else 8
    expect(f"{i}.location.sub_types", [s[1] for s in subs], [3, want_dst, want_src])
    expect(f"{i}.location.sub_flags", [s[0] for s in subs], [0, 0, 0])
    expect(f"{i}.location.sub_lengths", [s[2] for s in subs], [8, 16, 16])
    family = socket.AF_INET6 if v6 else socket.AF_INET
    width = 16 if v6 else 4
    # addresses in network byte order, IPv4 followed by 12 zero octets
    expect(f"{i}.location.dst_ip", subs[1][3][:width], socket.inet_pton(family, peer[0]))
    expect(f"{i}.location.src_ip", subs[2][3][:width], socket.inet_pton(family, local[0]))
    expect(f"{i}.location.mbz", subs[1][3][width:] + subs[2][3][width:], bytes(2 * (16 - width)))
    # no source MAC on a UDP socket: all-zero EUI-64
    expect(f"{i}.location.eui64", subs[0][3], bytes(8))


def main():
    if len(sys.argv) != 3:
        print(__doc__, file=sys.stderr)
        return 2
    addr, port = sys.argv[1], int(sys.argv[2])
    s, family = open_socket(addr)
    s.connect((addr, port))
    local = s.getsockname()[:2]
    peer = s.getpeername()[:2]
    rng = random.Random(8972)
    padding = bytes(rng.randrange(256) for _ in range(32))
    prev = None  # (reply seq, T3 octets) of the previous reply

    for i in range(COUNT):
        try:
            prev = one_exchange(s, family, i, padding, local, peer, prev)
        except (socket.timeout, OSError) as e:
            check(f"{i}.reply", False, f"no reply: {e!r}")
        except Exception as e:  # a reply scapy or the checks cannot digest
            check(f"{i}.parse", False, repr(e))
    others(s, family)
    print(f"SUMMARY checks={checks} failures={failures}")
    return 1 if failures else 0


def one_exchange(s, family, i, padding, local, peer, prev):
    """Send request i, check its reply; returns (reply seq, T3 octets)."""
    v6 = family == socket.AF_INET6
    req = request(i, padding)
    raw_req = bytes(req)
    s.send(raw_req)
    data, reply_tos = recv_reply(s, family)
    check(f"{i}.reply", True)
    rep = Reply(data)
    expect(f"{i}.length", len(data), len(raw_req))
    expect(f"{i}.seq_echo", rep.seq_sender, i)
    expect(f"{i}.ts_echo", data[28:36], raw_req[4:12])
    expect(f"{i}.ssid_echo", rep.ssid, SSID)
    expect(f"{i}.ttl", rep.ttl_sender, SENDER_TTL)
    expect(f"{i}.reflector_seq", rep.seq, i)  # stateful: 0, 1, 2, ...
    expect(f"{i}.mbz", (rep.mbz1, rep.mbz2), (0, 0))
    check(f"{i}.error_estimate", rep.err_estimate.multiplier != 0, "multiplier 0")
    t2, t3 = data[16:24], data[4:12]
    check(f"{i}.t2_le_t3", t2 <= t3, f"T2 {t2.hex()} > T3 {t3.hex()}")

    got = tlvs_of(rep)
    sent = tlvs_of(Request(raw_req))
    expect(f"{i}.tlv_types", [t[1] for t in got], [t[1] for t in sent])
    expect(f"{i}.tlv_lengths", [t[2] for t in got], [t[2] for t in sent])
    by_type = {t[1]: t for t in got}
    for t in (1, 2, 3, 4, 5, 6, 7):
        expect(f"{i}.flags_cleared.type{t}", by_type[t][0], 0)
    unknown = by_type[UNKNOWN_TYPE]
    expect(f"{i}.unknown.u_set", unknown[0], U)
    expect(f"{i}.unknown.bytes_kept", unknown[3], b"\xab" * 8)
    expect(f"{i}.padding.unchanged", by_type[1][3], padding)

    check_location(i, by_type[2][3], local, peer, v6)

    si, ti, so, to = by_type[3][3]
    check(f"{i}.tsinfo.sync_src", si in range(1, 6) and so in range(1, 6), f"{si} {so}")
    check(f"{i}.tsinfo.methods", ti in (1, 2, 3) and to in (1, 2, 3), f"{ti} {to}")

    c = by_type[4][3]
    expect(f"{i}.cos.dscp1", c[0] >> 2, DSCP_ASKED)
    expect(f"{i}.cos.dscp2", (c[0] & 3) << 4 | c[1] >> 4, DSCP_SENT)
    expect(f"{i}.cos.ecn", (c[1] >> 2) & 3, ECN_SENT)
    expect(f"{i}.cos.rp", c[1] & 3, 0)
    expect(f"{i}.cos.reserved", c[2:], b"\0\0")
    if reply_tos is not None:
        expect(f"{i}.cos.reply_dscp", reply_tos >> 2, DSCP_ASKED)

    s_txc, r_rxc, r_txc = struct.unpack("!III", by_type[5][3])
    expect(f"{i}.dm.s_txc", s_txc, i + 1)
    expect(f"{i}.dm.r_rxc", r_rxc, i + 1)
    expect(f"{i}.dm.r_txc", r_txc, i + 1)

    expect(f"{i}.access.id_rc", by_type[6][3], bytes([1 << 4, 1, 0, 0]))

    fseq, fts, fmode = struct.unpack("!IQB", by_type[7][3][:13])
    if prev is None:
        expect(f"{i}.fut.first_is_zero", (fseq, fts), (0, 0))
    else:
        expect(f"{i}.fut.prev_seq", fseq, prev[0])
        # the follow-up transmit time of the previous reply lies between
        # its T3 and this request's receive time T2
        ts = fts.to_bytes(8, "big")
        check(f"{i}.fut.timestamp", prev[1] <= ts <= t2, f"{ts.hex()} vs {prev[1].hex()}..{t2.hex()}")
        check(f"{i}.fut.mode", fmode in (1, 2, 3), f"mode {fmode}")
    return (rep.seq, t3)


def others(s, family):
    # A base packet without TLVs (44 octets): same length back, SSID echoed.
    raw = bytes(Request(seq=100, ts=time.time() + NTP_EPOCH_OFFSET, ssid=SSID))
    s.send(raw)
    try:
        data, _ = recv_reply(s, family)
        expect("base.length", len(data), 44)
        rep = Reply(data)
        expect("base.seq_echo", rep.seq_sender, 100)
        expect("base.ssid_echo", rep.ssid, SSID)
    except (socket.timeout, OSError) as e:
        check("base.reply", False, f"no reply: {e!r}")
    except Exception as e:
        check("base.parse", False, repr(e))

    # A malformed CoS TLV (Length 5) before a padding TLV: M set on it,
    # processing stops, the rest is copied unchanged (RFC 8972 §4).
    bad = Request(
        seq=101,
        ts=time.time() + NTP_EPOCH_OFFSET,
        ssid=SSID,
        tlv_objects=[tlv(4, bytes(5)), tlv(1, b"\x5a" * 8)],
    )
    raw = bytes(bad)
    s.send(raw)
    try:
        data, _ = recv_reply(s, family)
        got = tlvs_of(Reply(data))
        expect("malformed.m_set", got[0][0] & M, M)
        expect("malformed.value_kept", got[0][3], bytes(5))
        expect("malformed.rest_copied", data[44 + 9:], raw[44 + 9:])
    except (socket.timeout, OSError) as e:
        check("malformed.reply", False, f"no reply: {e!r}")
    except Exception as e:
        check("malformed.parse", False, repr(e))


if __name__ == "__main__":
    sys.exit(main())
