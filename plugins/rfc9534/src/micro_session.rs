//! Micro-session ID TLV, type 11 (RFC 9534 §3; WIRE.md §7.13).
//!
//! ```text
//! | Sender Micro-session ID (2) | Reflector Micro-session ID (2) |
//! ```
//! Length MUST be 4. A micro session measures one member link of a LAG;
//! the IDs are member-link identifiers.
//!
//! Sender (§3.1): puts its member-link ID in Sender Micro-session ID and,
//! when it knows it, the reflector's member-link ID in Reflector
//! Micro-session ID (0 otherwise). It MUST validate both IDs of the reply
//! and discard a reply whose IDs do not match; decoding here reports the
//! mismatch (`"mismatch": true` and the word `mismatch` in the summary) so
//! the driver or the operator can act on it.
//!
//! Reflector (§3.2): if Reflector Micro-session ID is not 0 it MUST match the
//! member link the request arrived on, or the request is discarded (no
//! reply, [`TlvVerdict::Discard`], counted by the engine as `tlv_discard`).
//! In the reply it keeps the Sender Micro-session ID and fills in its own
//! member-link ID. The reflector's ID for a request is, most specific first:
//! [`SETTING_ID_BY_IFINDEX`] matched against the receive interface,
//! [`SETTING_ID_BY_ADDR`] matched against the local address the request was
//! sent to, then [`SETTING_REFLECTOR_ID`] (absent = 0 = not configured; a
//! reflector with no ID then discards requests that name one, since it
//! cannot confirm the link).

use std::net::IpAddr;

use stamp_core::registry::PluginSettings;
use stamp_core::transport::RecvMeta;
use stamp_core::{
    DecodeContext, ReflectContext, TlvHandler, TlvOptions, TlvReport, TlvSlot, TlvTemplate,
    TlvVerdict,
};
use stamp_wire::{TlvFlags, TlvType};

use crate::options;

/// Sender option: the sender's member-link ID (Sender Micro-session ID).
pub const OPT_MICRO_SESSION_ID: &str = "micro-session-id";
/// Sender option: the reflector's member-link ID the sender expects
/// (Reflector Micro-session ID of the request; absent = 0 = unknown).
/// Reflector plugin setting of the same name: the reflector's own
/// member-link ID.
pub const OPT_REFLECTOR_ID: &str = "reflector-member-link-id";
/// Reflector plugin setting: the reflector's member-link ID (u16; absent or
/// 0 = not configured).
pub const SETTING_REFLECTOR_ID: &str = OPT_REFLECTOR_ID;
/// Reflector plugin setting: per local address, comma list of `ADDR=ID`.
pub const SETTING_ID_BY_ADDR: &str = "reflector-member-link-id-by-addr";
/// Reflector plugin setting: per receive interface, comma list of
/// `IFINDEX=ID`.
pub const SETTING_ID_BY_IFINDEX: &str = "reflector-member-link-id-by-ifindex";

/// Length of the Value (RFC 9534 §3: MUST be 4).
pub const VALUE_LEN: usize = 4;

/// Handler of the Micro-session ID TLV.
#[derive(Debug)]
pub struct MicroSessionHandler {
    code: TlvType,
    default_id: u16,
    by_addr: Vec<(IpAddr, u16)>,
    by_ifindex: Vec<(u32, u16)>,
}

impl MicroSessionHandler {
    /// A handler for type `code` whose reflector member-link ID is
    /// `default_id` everywhere.
    pub fn new(code: TlvType, default_id: u16) -> Self {
        MicroSessionHandler {
            code,
            default_id,
            by_addr: Vec::new(),
            by_ifindex: Vec::new(),
        }
    }

    /// Build from the plugin settings ([`SETTING_REFLECTOR_ID`],
    /// [`SETTING_ID_BY_ADDR`], [`SETTING_ID_BY_IFINDEX`]).
    pub fn from_settings(code: TlvType, settings: &PluginSettings) -> Result<Self, String> {
        let default_id = options::link_id(settings, SETTING_REFLECTOR_ID)?.unwrap_or(0);
        let by_addr = options::id_map(settings, SETTING_ID_BY_ADDR, |s| {
            s.parse::<IpAddr>()
                .map(|a| a.to_canonical())
                .map_err(|_| "expected an IPv4 or IPv6 address")
        })?;
        let by_ifindex = options::id_map(settings, SETTING_ID_BY_IFINDEX, |s| {
            s.parse::<u32>()
                .ok()
                .filter(|&i| i != 0)
                .ok_or("expected an interface index 1..4294967295")
        })?;
        Ok(MicroSessionHandler {
            code,
            default_id,
            by_addr,
            by_ifindex,
        })
    }

    /// The reflector's member-link ID for a request received as `meta`.
    pub fn reflector_id(&self, meta: &RecvMeta) -> u16 {
        if meta.ifindex != 0 {
            if let Some(&(_, id)) = self.by_ifindex.iter().find(|(i, _)| *i == meta.ifindex) {
                return id;
            }
        }
        if let Some(dst) = meta.dst.map(|d| d.to_canonical()) {
            if let Some(&(_, id)) = self.by_addr.iter().find(|(a, _)| *a == dst) {
                return id;
            }
        }
        self.default_id
    }
}

stamp_core::register_tlv! {
    key: "micro-session-id",
    code: 11,
    name: "Micro-session ID",
    spec: "RFC 9534 §3",
    configurable_code: false,
    factory: |code, settings| Ok(Box::new(MicroSessionHandler::from_settings(code, settings)?)),
}

fn ids(value: &[u8]) -> Option<(u16, u16)> {
    let &[a, b, c, d] = value else {
        return None;
    };
    Some((u16::from_be_bytes([a, b]), u16::from_be_bytes([c, d])))
}

impl TlvHandler for MicroSessionHandler {
    fn tlv_type(&self) -> TlvType {
        self.code
    }

    /// §3.2: Length ≠ 4 → M; Reflector ID ≠ 0 and not ours → discard;
    /// otherwise keep the Sender ID and fill in ours.
    fn reflect(&self, slot: &mut TlvSlot<'_>, ctx: &mut ReflectContext<'_>) -> TlvVerdict {
        let Some((_, asked)) = ids(slot.value()) else {
            return TlvVerdict::Malformed;
        };
        let ours = self.reflector_id(ctx.meta);
        if asked != 0 && asked != ours {
            return TlvVerdict::Discard;
        }
        slot.value_mut()[2..4].copy_from_slice(&ours.to_be_bytes());
        TlvVerdict::Processed
    }

    fn request(&self, opts: &TlvOptions) -> Result<Option<TlvTemplate>, String> {
        let expected = options::link_id(opts, OPT_REFLECTOR_ID)?;
        let Some(sender) = options::link_id(opts, OPT_MICRO_SESSION_ID)? else {
            if expected.is_some() {
                return Err(format!(
                    "--{OPT_REFLECTOR_ID} on the sender: needs --{OPT_MICRO_SESSION_ID} N"
                ));
            }
            return Ok(None);
        };
        let mut value = Vec::with_capacity(VALUE_LEN);
        value.extend_from_slice(&sender.to_be_bytes());
        value.extend_from_slice(&expected.unwrap_or(0).to_be_bytes());
        Ok(Some(TlvTemplate {
            tlv_type: self.code,
            value,
        }))
    }

    /// `sender 3 reflector 7 ok`, or `… mismatch (…)` when the Sender ID did
    /// not come back as sent or the Reflector ID is not the one expected
    /// (§3.1: such a reply must be discarded).
    fn decode(&self, flags: TlvFlags, value: &[u8], ctx: &DecodeContext<'_>) -> TlvReport {
        let report = TlvReport::new(self.code, "msid", flags, String::new());
        let Some((sender, reflector)) = ids(value) else {
            let mut r = report.field("octets", value.len()).field("mismatch", true);
            r.summary = format!("malformed: {} octets (must be 4), mismatch", value.len());
            return r;
        };
        let (sent_sender, expected) = ctx
            .sent_value
            .and_then(ids)
            .map_or((None, 0), |(s, e)| (Some(s), e));
        let mut why = Vec::new();
        if let Some(s) = sent_sender.filter(|&s| s != sender) {
            why.push(format!("sent sender {s}"));
        }
        if expected != 0 && reflector != expected {
            why.push(format!("expected reflector {expected}"));
        }
        let mismatch = !why.is_empty();
        let mut report = report
            .field("sender", sender)
            .field("reflector", reflector)
            .field("mismatch", mismatch);
        if expected != 0 {
            report = report.field("expected_reflector", expected);
        }
        report.summary = if mismatch {
            format!(
                "sender {sender} reflector {reflector} mismatch ({})",
                why.join(", ")
            )
        } else {
            format!("sender {sender} reflector {reflector} ok")
        };
        report
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::test_support::{reply_meta, request_value, Fixture};
    use stamp_wire::TimestampFormat;

    fn handler(settings: &[(&str, &str)]) -> MicroSessionHandler {
        let mut s = PluginSettings::new();
        for (k, v) in settings {
            s.set(*k, *v);
        }
        MicroSessionHandler::from_settings(TlvType::MICRO_SESSION_ID, &s).unwrap()
    }

    #[test]
    fn reflector_keeps_sender_id_and_fills_its_own() {
        let h = handler(&[("reflector-member-link-id", "7")]);
        let (out, verdict, _) = Fixture::v4().reflect(&h, &[0x80, 11, 0, 4, 0, 3, 0, 0]);
        assert_eq!(verdict, TlvVerdict::Processed);
        assert_eq!(out, [0x80, 11, 0, 4, 0, 3, 0, 7]);
        // The expected ID matches ours: processed too.
        let (out, verdict, _) = Fixture::v4().reflect(&h, &[0x80, 11, 0, 4, 0, 3, 0, 7]);
        assert_eq!(verdict, TlvVerdict::Processed);
        assert_eq!(&out[4..], [0, 3, 0, 7]);
    }

    #[test]
    fn reflector_without_an_id_answers_zero() {
        let (out, verdict, _) = Fixture::v4().reflect(&handler(&[]), &[0x80, 11, 0, 4, 1, 2, 0, 0]);
        assert_eq!(verdict, TlvVerdict::Processed);
        assert_eq!(&out[4..], [1, 2, 0, 0]);
    }

    #[test]
    fn reflector_id_mismatch_discards_the_request() {
        let h = handler(&[("reflector-member-link-id", "7")]);
        let (_, verdict, _) = Fixture::v4().reflect(&h, &[0x80, 11, 0, 4, 0, 3, 0, 8]);
        assert_eq!(verdict, TlvVerdict::Discard);
        // Not configured: any non-zero ID cannot be confirmed.
        let (_, verdict, _) = Fixture::v4().reflect(&handler(&[]), &[0x80, 11, 0, 4, 0, 3, 0, 8]);
        assert_eq!(verdict, TlvVerdict::Discard);
    }

    #[test]
    fn per_interface_then_per_address_then_default() {
        // Fixture: ifindex 3, local address 192.0.2.1.
        let h = handler(&[
            ("reflector-member-link-id", "1"),
            (
                "reflector-member-link-id-by-addr",
                "192.0.2.1=20, 2001:db8::1=21",
            ),
            ("reflector-member-link-id-by-ifindex", "3=30"),
        ]);
        let mut f = Fixture::v4();
        assert_eq!(h.reflector_id(&f.meta), 30);
        f.meta.ifindex = 4;
        assert_eq!(h.reflector_id(&f.meta), 20);
        f.meta.dst = Some("::ffff:192.0.2.1".parse().unwrap());
        assert_eq!(h.reflector_id(&f.meta), 20, "IPv4-mapped matches IPv4");
        f.meta.dst = Some("2001:db8::1".parse().unwrap());
        assert_eq!(h.reflector_id(&f.meta), 21);
        f.meta.dst = Some("192.0.2.9".parse().unwrap());
        assert_eq!(h.reflector_id(&f.meta), 1);
        f.meta.dst = None;
        assert_eq!(h.reflector_id(&f.meta), 1);
        let (out, verdict, _) = f.reflect(&h, &[0x80, 11, 0, 4, 0, 3, 0, 1]);
        assert_eq!(verdict, TlvVerdict::Processed);
        assert_eq!(&out[4..], [0, 3, 0, 1]);
        let (_, verdict, _) = f.reflect(&h, &[0x80, 11, 0, 4, 0, 3, 0, 30]);
        assert_eq!(verdict, TlvVerdict::Discard, "ifindex 4 is not link 30");
    }

    #[test]
    fn lengths_other_than_4_are_malformed() {
        for len in [0usize, 2, 3, 5, 8] {
            let mut tlv = vec![0x80, 11, 0, len as u8];
            tlv.resize(4 + len, 0);
            let (_, verdict, _) = Fixture::v4().reflect(&handler(&[]), &tlv);
            assert_eq!(verdict, TlvVerdict::Malformed, "length {len}");
        }
    }

    #[test]
    fn settings_errors_name_the_setting() {
        let mut s = PluginSettings::new();
        s.set(SETTING_REFLECTOR_ID, "70000");
        assert_eq!(
            MicroSessionHandler::from_settings(TlvType(11), &s).unwrap_err(),
            "--reflector-member-link-id 70000: expected a member-link ID 0..65535"
        );
        let mut s = PluginSettings::new();
        s.set(SETTING_ID_BY_ADDR, "host=3");
        assert_eq!(
            MicroSessionHandler::from_settings(TlvType(11), &s).unwrap_err(),
            "--reflector-member-link-id-by-addr host=3: \"host=3\": expected an IPv4 or IPv6 address"
        );
        let mut s = PluginSettings::new();
        s.set(SETTING_ID_BY_IFINDEX, "0=3");
        assert_eq!(
            MicroSessionHandler::from_settings(TlvType(11), &s).unwrap_err(),
            "--reflector-member-link-id-by-ifindex 0=3: \"0=3\": expected an interface index 1..4294967295"
        );
    }

    #[test]
    fn request_carries_sender_and_expected_reflector_ids() {
        let h = handler(&[]);
        assert_eq!(
            request_value(&h, &[("micro-session-id", "3")]).unwrap(),
            Some(vec![0, 3, 0, 0])
        );
        assert_eq!(
            request_value(
                &h,
                &[
                    ("micro-session-id", "258"),
                    ("reflector-member-link-id", "7")
                ]
            )
            .unwrap(),
            Some(vec![1, 2, 0, 7])
        );
        assert_eq!(request_value(&h, &[]).unwrap(), None);
        assert_eq!(
            request_value(&h, &[("micro-session-id", "-1")]).unwrap_err(),
            "--micro-session-id -1: expected a member-link ID 0..65535"
        );
        assert_eq!(
            request_value(&h, &[("reflector-member-link-id", "7")]).unwrap_err(),
            "--reflector-member-link-id on the sender: needs --micro-session-id N"
        );
    }

    fn decode(sent: &[u8], value: &[u8]) -> TlvReport {
        let meta = reply_meta(None);
        let ctx = DecodeContext {
            meta: &meta,
            sent_value: Some(sent),
            reflector_format: TimestampFormat::Ntp,
        };
        handler(&[]).decode(TlvFlags::NONE, value, &ctx)
    }

    #[test]
    fn decode_checks_both_ids() {
        let r = decode(&[0, 3, 0, 0], &[0, 3, 0, 7]);
        assert_eq!(
            (r.name, r.summary.as_str()),
            ("msid", "sender 3 reflector 7 ok")
        );
        assert_eq!(r.fields["mismatch"], false);
        let r = decode(&[0, 3, 0, 7], &[0, 3, 0, 7]);
        assert_eq!(r.summary, "sender 3 reflector 7 ok");
        assert_eq!(r.fields["expected_reflector"], 7);
        let r = decode(&[0, 3, 0, 7], &[0, 3, 0, 9]);
        assert_eq!(
            r.summary,
            "sender 3 reflector 9 mismatch (expected reflector 7)"
        );
        assert_eq!(r.fields["mismatch"], true);
        let r = decode(&[0, 3, 0, 0], &[0, 4, 0, 9]);
        assert_eq!(r.summary, "sender 4 reflector 9 mismatch (sent sender 3)");
        assert_eq!(r.fields["mismatch"], true);
        let r = decode(&[0, 3, 0, 0], &[0, 3, 0]);
        assert_eq!(r.summary, "malformed: 3 octets (must be 4), mismatch");
        assert_eq!(r.fields["mismatch"], true);
    }
}
