//! Sub-TLVs of the Reflected Test Packet Control TLV
//! (draft-ietf-ippm-asymmetrical-pkts-14 §3; STAMP Sub-TLV Types registry,
//! WIRE.md §7.14, §9.3).
//!
//! | Sub-type | Name | Length | Value |
//! | --- | --- | --- | --- |
//! | 10 | Layer 2 Address Group | 4, 12 or 16 | Mask (L/2) ‖ Group (L/2) |
//! | 11 | Layer 3 Address Group | 8 (IPv4) or 20 (IPv6) | Prefix Length (1) ‖ Reserved (3) ‖ Prefix (4/16) |
//!
//! Both are filters: a reflector that is not in the group stops processing
//! the packet (no reply). Choices made here, where the draft is silent:
//!
//! * Several groups: the request passes when, for each kind present (L2,
//!   L3), at least one sub-TLV of that kind matches (OR within a kind, AND
//!   across kinds).
//! * Layer 2: a user-space reflector on a UDP socket cannot know which MAC
//!   address the request arrived on, so a Layer 2 group only matches when
//!   it matches every host (Mask and Group all zero); any other Layer 2
//!   group is treated as "no match": no reply. That is the conservative
//!   reading (never a reply train the sender's filter did not ask for).
//! * Layer 3: the prefix is compared with the address the request arrived
//!   on (`RecvMeta::dst`) and the plugin setting `local-addresses` (the
//!   binary fills it with the host's addresses). IPv4-mapped IPv6
//!   addresses compare as IPv4. The Reserved octets are ignored on receipt.
//! * Malformed sub-TLV (a Length its type does not allow, a prefix length
//!   beyond 32 / 128, framing that overruns the TLV): the draft gives the
//!   sub-TLV flags no semantics, so we do what RFC 8972 §4 does for a TLV
//!   and what the RFC 9503 plugin does for Return Path sub-TLVs: M on the
//!   sub-TLV and on the TLV, TLV processing stops. (stamp-suite, the
//!   independent implementation, ignores such a sub-TLV instead.)
//! * Other sub-TLVs (the ext-hdr draft's IPv6 Extension Header Control,
//!   unknown types) are not acted upon and come back with U; an all-zero
//!   4-octet sub-TLV (type 0, Length 0: the placeholder some senders add to
//!   reach -14's 12-octet minimum) is left as received.

use std::fmt;
use std::net::{IpAddr, Ipv4Addr, Ipv6Addr};
use std::str::FromStr;

use stamp_wire::tlv::HEADER_LEN;
use stamp_wire::{TlvFlags, TlvIter};

/// A sub-TLV type of the Reflected Test Packet Control TLV: an open
/// newtype, so unknown types are values.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub struct RtpcSubTlv(pub u8);

impl RtpcSubTlv {
    /// Layer 2 Address Group.
    pub const L2_ADDRESS_GROUP: RtpcSubTlv = RtpcSubTlv(10);
    /// Layer 3 Address Group.
    pub const L3_ADDRESS_GROUP: RtpcSubTlv = RtpcSubTlv(11);

    /// Is `len` a valid Length for this sub-type? Unknown types accept any
    /// Length but the Private Use range (252–254), which needs room for an
    /// Enterprise Number (RFC 8972 §4).
    pub fn length_ok(self, len: usize) -> bool {
        match self.0 {
            10 => matches!(len, 4 | 12 | 16),
            11 => len == 8 || len == 20,
            252..=254 => len >= 4,
            _ => true,
        }
    }
}

/// A Layer 3 Address Group: an IPv4 or IPv6 prefix.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct L3Group {
    prefix: IpAddr,
    prefix_len: u8,
}

impl L3Group {
    /// `prefix/prefix_len`, or `None` when the length exceeds the family's.
    pub fn new(prefix: IpAddr, prefix_len: u8) -> Option<Self> {
        let max = if prefix.is_ipv4() { 32 } else { 128 };
        (prefix_len <= max).then_some(L3Group { prefix, prefix_len })
    }

    /// The prefix.
    pub fn prefix(&self) -> IpAddr {
        self.prefix
    }

    /// The prefix length.
    pub fn prefix_len(&self) -> u8 {
        self.prefix_len
    }

    /// Parse a sub-TLV Value (8 or 20 octets).
    pub fn parse(value: &[u8]) -> Option<Self> {
        let (&len, rest) = value.split_first()?;
        let addr = rest.get(3..)?;
        let prefix = if let Ok(b) = <[u8; 4]>::try_from(addr) {
            IpAddr::V4(Ipv4Addr::from(b))
        } else if let Ok(b) = <[u8; 16]>::try_from(addr) {
            IpAddr::V6(Ipv6Addr::from(b))
        } else {
            return None;
        };
        L3Group::new(prefix, len)
    }

    /// The sub-TLV Value: Prefix Length, three zero Reserved octets, prefix.
    pub fn value(&self) -> Vec<u8> {
        let mut v = vec![self.prefix_len, 0, 0, 0];
        match self.prefix {
            IpAddr::V4(a) => v.extend_from_slice(&a.octets()),
            IpAddr::V6(a) => v.extend_from_slice(&a.octets()),
        }
        v
    }

    /// Is `addr` inside the prefix? IPv4-mapped IPv6 compares as IPv4;
    /// another family never matches.
    pub fn contains(&self, addr: IpAddr) -> bool {
        let n = u32::from(self.prefix_len);
        match (self.prefix.to_canonical(), addr.to_canonical()) {
            (IpAddr::V4(p), IpAddr::V4(a)) => {
                let mask = u32::MAX.checked_shl(32 - n).unwrap_or(0);
                u32::from(p) & mask == u32::from(a) & mask
            }
            (IpAddr::V6(p), IpAddr::V6(a)) if self.prefix.is_ipv6() => {
                let mask = u128::MAX.checked_shl(128 - n).unwrap_or(0);
                u128::from(p) & mask == u128::from(a) & mask
            }
            _ => false,
        }
    }
}

impl fmt::Display for L3Group {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{}/{}", self.prefix, self.prefix_len)
    }
}

impl FromStr for L3Group {
    type Err = &'static str;

    /// `192.0.2.0/24`, `2001:db8::/32`, or a bare address (a host prefix).
    fn from_str(s: &str) -> Result<Self, Self::Err> {
        const RULE: &str = "expected an IPv4 or IPv6 prefix such as 192.0.2.0/24";
        let s = s.trim();
        let (addr, len) = match s.split_once('/') {
            Some((a, l)) => (a, Some(l.trim().parse::<u8>().map_err(|_| RULE)?)),
            None => (s, None),
        };
        let prefix: IpAddr = addr.trim().parse().map_err(|_| RULE)?;
        let len = len.unwrap_or(if prefix.is_ipv4() { 32 } else { 128 });
        L3Group::new(prefix, len).ok_or("prefix length too long for the address family")
    }
}

/// Does a Layer 2 Address Group Value match every host (Mask and Group all
/// zero)? The only Layer 2 group a UDP-socket reflector can evaluate.
pub fn l2_matches_any_host(value: &[u8]) -> bool {
    value.iter().all(|&b| b == 0)
}

/// What the address-group sub-TLVs of a request say about this reflector.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum GroupMatch {
    /// No address-group sub-TLV: every reflector is addressed.
    NoFilter,
    /// This reflector is in the group(s).
    Match,
    /// It is not: stop processing, no reply (draft §3).
    NoMatch,
}

/// Check the framing and Lengths of the sub-TLV area `subs`. On error, the
/// offset of the offending sub-TLV when it has a whole header to flag.
pub fn check(subs: &[u8]) -> Result<(), Option<usize>> {
    for item in TlvIter::new(subs) {
        let t = match item {
            Ok(t) => t,
            Err((off, _)) => return Err((subs.len() - off >= HEADER_LEN).then_some(off)),
        };
        let sub = RtpcSubTlv(t.tlv_type.0);
        if !sub.length_ok(t.value.len()) {
            return Err(Some(t.offset));
        }
        if sub == RtpcSubTlv::L3_ADDRESS_GROUP && L3Group::parse(t.value).is_none() {
            return Err(Some(t.offset));
        }
    }
    Ok(())
}

/// Evaluate the address groups of a sub-TLV area already [`check`]ed, and
/// set each sub-TLV's flags for the reply (groups: cleared; others: U; an
/// all-zero placeholder: left as is). The reflector's own addresses are the
/// request's destination `dst` and `local`.
pub fn evaluate(subs: &mut [u8], dst: Option<IpAddr>, local: &[IpAddr]) -> GroupMatch {
    let (mut l2, mut l3) = (None::<bool>, None::<bool>);
    let mut off = 0;
    while off + HEADER_LEN <= subs.len() {
        let len = u16::from_be_bytes([subs[off + 2], subs[off + 3]]) as usize;
        let end = (off + HEADER_LEN + len).min(subs.len());
        let value = &subs[off + HEADER_LEN..end];
        match RtpcSubTlv(subs[off + 1]) {
            RtpcSubTlv::L2_ADDRESS_GROUP => {
                let hit = l2_matches_any_host(value);
                l2 = Some(l2.unwrap_or(false) || hit);
                subs[off] = 0;
            }
            RtpcSubTlv::L3_ADDRESS_GROUP => {
                let hit = L3Group::parse(value).is_some_and(|g| {
                    dst.is_some_and(|d| g.contains(d)) || local.iter().any(|&a| g.contains(a))
                });
                l3 = Some(l3.unwrap_or(false) || hit);
                subs[off] = 0;
            }
            _ if subs[off..end].iter().all(|&b| b == 0) => {}
            _ => subs[off] = TlvFlags::U.0,
        }
        off += HEADER_LEN + len;
    }
    match (l2, l3) {
        (None, None) => GroupMatch::NoFilter,
        (a, b) if a != Some(false) && b != Some(false) => GroupMatch::Match,
        _ => GroupMatch::NoMatch,
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn l3(prefix: &str) -> Vec<u8> {
        let g: L3Group = prefix.parse().unwrap();
        let mut v = vec![0x80, 11];
        let value = g.value();
        v.extend_from_slice(&(value.len() as u16).to_be_bytes());
        v.extend_from_slice(&value);
        v
    }

    const DST: Option<IpAddr> = Some(IpAddr::V4(Ipv4Addr::new(192, 0, 2, 1)));

    #[test]
    fn l3_group_value_layout() {
        assert_eq!(
            l3("192.0.2.0/24"),
            [0x80, 11, 0, 8, 24, 0, 0, 0, 192, 0, 2, 0]
        );
        let v6 = l3("2001:db8::/32");
        assert_eq!(&v6[..8], &[0x80, 11, 0, 20, 32, 0, 0, 0]);
        assert_eq!(&v6[8..12], &[0x20, 0x01, 0x0d, 0xb8]);
        assert_eq!(v6.len(), 24);
    }

    #[test]
    fn l3_group_parses_and_refuses_long_prefixes() {
        let g = L3Group::parse(&[24, 9, 9, 9, 192, 0, 2, 0]).unwrap();
        assert_eq!(g.to_string(), "192.0.2.0/24", "Reserved ignored on receipt");
        assert_eq!(L3Group::parse(&[33, 0, 0, 0, 192, 0, 2, 0]), None);
        let mut v6 = vec![129, 0, 0, 0];
        v6.extend_from_slice(&[0; 16]);
        assert_eq!(L3Group::parse(&v6), None);
        assert_eq!(L3Group::parse(&[24, 0, 0, 0, 1, 2, 3]), None);
        assert_eq!(
            "192.0.2.1".parse::<L3Group>().unwrap().to_string(),
            "192.0.2.1/32"
        );
        assert!("192.0.2.0/33".parse::<L3Group>().is_err());
        assert!("x/8".parse::<L3Group>().is_err());
    }

    #[test]
    fn l3_group_contains_by_prefix_and_family() {
        let g: L3Group = "192.0.2.0/24".parse().unwrap();
        assert!(g.contains("192.0.2.200".parse().unwrap()));
        assert!(!g.contains("192.0.3.1".parse().unwrap()));
        assert!(g.contains("::ffff:192.0.2.9".parse().unwrap()), "mapped");
        assert!(!g.contains("2001:db8::1".parse().unwrap()));
        let all: L3Group = "0.0.0.0/0".parse().unwrap();
        assert!(all.contains("203.0.113.1".parse().unwrap()));
        let v6: L3Group = "2001:db8::/32".parse().unwrap();
        assert!(v6.contains("2001:db8:1::1".parse().unwrap()));
        assert!(!v6.contains("2001:db9::1".parse().unwrap()));
        assert!(!v6.contains("192.0.2.1".parse().unwrap()));
        let host: L3Group = "2001:db8::1/128".parse().unwrap();
        assert!(host.contains("2001:db8::1".parse().unwrap()));
    }

    #[test]
    fn lengths_per_sub_type() {
        for (t, ok, bad) in [
            (10u8, &[4usize, 12, 16][..], &[0usize, 6, 8, 20][..]),
            (11, &[8, 20], &[4, 12, 16]),
            (252, &[4, 8], &[0, 3]),
            (200, &[0, 3], &[]),
        ] {
            for &l in ok {
                assert!(RtpcSubTlv(t).length_ok(l), "{t}/{l}");
            }
            for &l in bad {
                assert!(!RtpcSubTlv(t).length_ok(l), "{t}/{l}");
            }
        }
    }

    #[test]
    fn check_flags_the_offending_sub_tlv() {
        assert_eq!(check(&[]), Ok(()));
        assert_eq!(check(&[0, 0, 0, 0]), Ok(()), "zero placeholder");
        let mut subs = l3("192.0.2.0/24");
        subs.extend_from_slice(&[0x80, 10, 0, 6, 0, 0, 0, 0, 0, 0]);
        assert_eq!(check(&subs), Err(Some(12)), "L2 group of 6 octets");
        assert_eq!(
            check(&[0x80, 11, 0, 8, 40, 0, 0, 0, 192, 0, 2, 0]),
            Err(Some(0))
        );
        assert_eq!(check(&[0x80, 11, 0, 9, 1]), Err(Some(0)), "overrun");
        assert_eq!(check(&[0, 0, 0, 0, 0x80]), Err(None), "partial header");
    }

    #[test]
    fn evaluate_l3_against_destination_and_local_addresses() {
        let mut subs = l3("192.0.2.0/24");
        assert_eq!(evaluate(&mut subs, DST, &[]), GroupMatch::Match);
        assert_eq!(subs[0], 0, "group sub-TLV acted upon: flags cleared");
        let mut subs = l3("203.0.113.0/24");
        assert_eq!(evaluate(&mut subs, DST, &[]), GroupMatch::NoMatch);
        let local = ["203.0.113.7".parse().unwrap()];
        assert_eq!(evaluate(&mut subs, DST, &local), GroupMatch::Match);
        assert_eq!(evaluate(&mut subs, None, &[]), GroupMatch::NoMatch);
    }

    #[test]
    fn evaluate_ors_within_a_kind_and_ands_across_kinds() {
        let mut subs = l3("203.0.113.0/24");
        subs.extend_from_slice(&l3("192.0.2.0/24"));
        assert_eq!(evaluate(&mut subs, DST, &[]), GroupMatch::Match);
        // L3 matches, L2 with a real MAC filter cannot: no match.
        let mut with_l2 = subs.clone();
        with_l2.extend_from_slice(&[0x80, 10, 0, 12, 0xFF, 0xFF, 0xFF, 0, 0, 0]);
        with_l2.extend_from_slice(&[0x00, 0x11, 0x22, 0, 0, 0]);
        assert_eq!(evaluate(&mut with_l2, DST, &[]), GroupMatch::NoMatch);
        // An all-zero L2 group matches every host.
        let mut any_l2 = subs.clone();
        any_l2.extend_from_slice(&[0x80, 10, 0, 4, 0, 0, 0, 0]);
        assert_eq!(evaluate(&mut any_l2, DST, &[]), GroupMatch::Match);
        assert_eq!(any_l2[any_l2.len() - 8], 0);
    }

    #[test]
    fn evaluate_sets_u_on_other_sub_tlvs_and_leaves_the_placeholder() {
        let mut subs = vec![0, 0, 0, 0, 0x00, 240, 0, 0, 0x80, 200, 0, 2, 1, 2];
        assert_eq!(evaluate(&mut subs, DST, &[]), GroupMatch::NoFilter);
        assert_eq!(subs, [0, 0, 0, 0, 0x80, 240, 0, 0, 0x80, 200, 0, 2, 1, 2]);
    }
}
