//! The reflector's policy for Reflected Test Packet Control requests
//! (draft-ietf-ippm-asymmetrical-pkts-14 §3, §5: support "MUST be
//! administratively controllable" and "disabled by default"; the reflector
//! "MUST enforce limits on data rate and total volume generated per
//! request").
//!
//! | Plugin setting | Default | Meaning |
//! | --- | --- | --- |
//! | `reflected-control-enabled` | `false` | honour Type 12 at all |
//! | `reflected-control-max-count` | 1 | most replies per request (1..65535) |
//! | `reflected-control-max-size` | the request's own length | largest reply, octets (1..9000) |
//! | `reflected-control-min-interval-ns` | 1 000 000 | shortest gap between replies |
//!
//! The three limits bound what one request can cause: at most
//! `max-count × max-size` octets (volume), at most `max-size` octets every
//! `min-interval-ns` (rate). With the defaults nothing is ever amplified
//! (DESIGN.md §6): one reply, no larger than the request.
//!
//! A request beyond a limit is clamped to it and the TLV gets C (the draft
//! asks for a single reply with C when the rate/volume limits would be
//! exceeded; clamping the count instead keeps the sender's train as long as
//! policy allows, still bounded, still flagged — see [`Grant`]).

use stamp_core::registry::PluginSettings;

use crate::options;

/// Plugin setting: honour Type 12 requests (`true`/`false`, default false).
pub const SETTING_ENABLED: &str = "reflected-control-enabled";
/// Plugin setting: most replies per request.
pub const SETTING_MAX_COUNT: &str = "reflected-control-max-count";
/// Plugin setting: largest reply, octets.
pub const SETTING_MAX_SIZE: &str = "reflected-control-max-size";
/// Plugin setting: shortest interval between replies, nanoseconds.
pub const SETTING_MIN_INTERVAL_NS: &str = "reflected-control-min-interval-ns";

/// Default of [`SETTING_MAX_COUNT`]: never more than one reply.
pub const DEFAULT_MAX_COUNT: u16 = 1;
/// Default of [`SETTING_MIN_INTERVAL_NS`]: 1 ms.
pub const DEFAULT_MIN_INTERVAL_NS: u32 = 1_000_000;
/// Upper bound of [`SETTING_MAX_SIZE`] (a jumbo frame's payload, with room
/// for IP and UDP headers inside the 9216-octet receive buffers).
pub const MAX_REPLY_SIZE: usize = 9000;

/// What the reflector allows.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Policy {
    /// Honour Type 12 at all.
    pub enabled: bool,
    /// Most replies per request.
    pub max_count: u16,
    /// Largest reply; `None` = the request's own length.
    pub max_size: Option<usize>,
    /// Shortest interval between replies.
    pub min_interval_ns: u32,
}

impl Default for Policy {
    fn default() -> Self {
        Policy {
            enabled: false,
            max_count: DEFAULT_MAX_COUNT,
            max_size: None,
            min_interval_ns: DEFAULT_MIN_INTERVAL_NS,
        }
    }
}

/// What one request asks for (the fixed part of the Value).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Request {
    /// Length of the Reflected Packet, octets.
    pub length: u16,
    /// Number of the Reflected Packets.
    pub count: u16,
    /// Interval Between the Reflected Packets, nanoseconds.
    pub interval_ns: u32,
}

/// What the reflector grants a request, for the reply plan.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Grant {
    /// Replies to send (≥ 1).
    pub copies: u16,
    /// Gap between replies, ns (0 when there is one reply).
    pub interval_ns: u32,
    /// Length of every reply, octets (≥ the request's length).
    pub reply_len: usize,
    /// A limit cut the request down: C on the TLV.
    pub limited: bool,
}

impl Policy {
    /// Read the plugin settings; errors name the setting.
    pub fn from_settings(s: &PluginSettings) -> Result<Self, String> {
        let d = Policy::default();
        Ok(Policy {
            enabled: options::boolean(s, SETTING_ENABLED)?.unwrap_or(d.enabled),
            max_count: options::bounded(s, SETTING_MAX_COUNT, 1, 65_535, "must be 1..65535")?
                .map_or(d.max_count, |v| v as u16),
            max_size: options::bounded(
                s,
                SETTING_MAX_SIZE,
                1,
                MAX_REPLY_SIZE as u64,
                "must be 1..9000 octets",
            )?
            .map(|v| v as usize),
            min_interval_ns: options::bounded(
                s,
                SETTING_MIN_INTERVAL_NS,
                0,
                u64::from(u32::MAX),
                "must be 0..4294967295 nanoseconds",
            )?
            .map_or(d.min_interval_ns, |v| v as u32),
        })
    }

    /// What to grant `req` arriving in a request of `request_len` octets
    /// (`req.count` ≥ 1; Number 0 is the handler's business).
    ///
    /// * copies = Number, clamped to `max_count`;
    /// * interval = the requested one, raised to `min_interval_ns` (only
    ///   checked when more than one reply goes out);
    /// * reply length = the larger of the request's length and the
    ///   requested length rounded up to a multiple of 4 (draft §3), capped at
    ///   `max_size` (default: the request's length, so no growth). The
    ///   growth is carried by an Extra Padding TLV the driver appends, whose
    ///   4-octet header must fit: a growth of 1..3 octets becomes 5..7.
    ///
    /// The reply never shrinks below the request (the draft would allow
    /// dropping the request's Extra Padding; we keep the symmetric size as
    /// the floor, DESIGN.md §6).
    pub fn grant(&self, req: Request, request_len: usize) -> Grant {
        let mut limited = false;
        let copies = if req.count > self.max_count {
            limited = true;
            self.max_count
        } else {
            req.count
        }
        .max(1);
        let interval_ns = if copies <= 1 {
            0
        } else if req.interval_ns < self.min_interval_ns {
            limited = true;
            self.min_interval_ns
        } else {
            req.interval_ns
        };
        let max_size = self.max_size.unwrap_or(request_len).max(request_len);
        let wanted = (usize::from(req.length) + 3) & !3;
        let reply_len = if wanted <= request_len {
            request_len
        } else {
            let mut len = wanted;
            if len - request_len < stamp_wire::tlv::HEADER_LEN {
                len += stamp_wire::tlv::HEADER_LEN;
            }
            if len > max_size {
                limited = true;
                len = max_size;
                if len - request_len < stamp_wire::tlv::HEADER_LEN {
                    len = request_len;
                }
            }
            len
        };
        Grant {
            copies,
            interval_ns,
            reply_len,
            limited,
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn settings(pairs: &[(&str, &str)]) -> PluginSettings {
        let mut s = PluginSettings::new();
        for (k, v) in pairs {
            s.set(*k, *v);
        }
        s
    }

    fn open(max_count: u16, max_size: Option<usize>, min_interval_ns: u32) -> Policy {
        Policy {
            enabled: true,
            max_count,
            max_size,
            min_interval_ns,
        }
    }

    fn req(length: u16, count: u16, interval_ns: u32) -> Request {
        Request {
            length,
            count,
            interval_ns,
        }
    }

    #[test]
    fn defaults_are_disabled_one_reply_no_growth() {
        let p = Policy::from_settings(&settings(&[])).unwrap();
        assert_eq!(p, Policy::default());
        assert_eq!(
            (p.enabled, p.max_count, p.max_size, p.min_interval_ns),
            (false, 1, None, 1_000_000)
        );
    }

    #[test]
    fn settings_are_read_and_checked() {
        let p = Policy::from_settings(&settings(&[
            ("reflected-control-enabled", "true"),
            ("reflected-control-max-count", "4"),
            ("reflected-control-max-size", "1500"),
            ("reflected-control-min-interval-ns", "0"),
        ]))
        .unwrap();
        assert_eq!(p, open(4, Some(1500), 0));
        for (k, v, e) in [
            (
                "reflected-control-enabled",
                "maybe",
                "expected true or false",
            ),
            ("reflected-control-max-count", "0", "must be 1..65535"),
            ("reflected-control-max-count", "65536", "must be 1..65535"),
            (
                "reflected-control-max-size",
                "9001",
                "must be 1..9000 octets",
            ),
            ("reflected-control-max-size", "0", "must be 1..9000 octets"),
            (
                "reflected-control-min-interval-ns",
                "-1",
                "must be 0..4294967295 nanoseconds",
            ),
        ] {
            assert_eq!(
                Policy::from_settings(&settings(&[(k, v)])).unwrap_err(),
                format!("--{k} {v}: {e}")
            );
        }
    }

    #[test]
    fn within_policy_everything_is_granted() {
        let g = open(4, Some(1500), 1_000).grant(req(200, 3, 1_000_000_000), 56);
        assert_eq!(
            g,
            Grant {
                copies: 3,
                interval_ns: 1_000_000_000,
                reply_len: 200,
                limited: false
            }
        );
    }

    #[test]
    fn count_is_clamped_with_c() {
        let g = Policy::default().grant(req(0, 5, 1_000_000), 56);
        assert_eq!((g.copies, g.interval_ns, g.limited), (1, 0, true));
        let g = open(4, None, 0).grant(req(0, 10, 5), 56);
        assert_eq!((g.copies, g.interval_ns, g.limited), (4, 5, true));
    }

    #[test]
    fn interval_is_raised_to_the_minimum_with_c() {
        let g = open(4, None, 1_000_000).grant(req(0, 2, 10), 56);
        assert_eq!((g.copies, g.interval_ns, g.limited), (2, 1_000_000, true));
        // One reply: the interval does not matter.
        let g = open(4, None, 1_000_000).grant(req(0, 1, 10), 56);
        assert_eq!((g.copies, g.interval_ns, g.limited), (1, 0, false));
    }

    #[test]
    fn length_rounds_up_to_four_and_never_shrinks() {
        let p = open(1, Some(9000), 0);
        assert_eq!(p.grant(req(201, 1, 0), 56).reply_len, 204);
        assert_eq!(p.grant(req(200, 1, 0), 56).reply_len, 200);
        // Asking for less than the request: the request's length, no C.
        let g = p.grant(req(20, 1, 0), 56);
        assert_eq!((g.reply_len, g.limited), (56, false));
        // Growth of 1..3 octets cannot hold a padding header: 4 more.
        assert_eq!(p.grant(req(60, 1, 0), 57).reply_len, 64);
        assert_eq!(p.grant(req(60, 1, 0), 56).reply_len, 60);
    }

    #[test]
    fn length_is_capped_at_max_size_with_c() {
        // Default max size: the request's own length.
        let g = open(1, None, 0).grant(req(200, 1, 0), 56);
        assert_eq!((g.reply_len, g.limited), (56, true));
        let g = open(1, Some(150), 0).grant(req(200, 1, 0), 56);
        assert_eq!((g.reply_len, g.limited), (150, true));
        // A cap that leaves no room for a padding header: no growth.
        let g = open(1, Some(58), 0).grant(req(200, 1, 0), 56);
        assert_eq!((g.reply_len, g.limited), (56, true));
        // A cap below the request never shrinks the reply.
        let g = open(1, Some(40), 0).grant(req(44, 1, 0), 56);
        assert_eq!((g.reply_len, g.limited), (56, false));
        let g = open(1, Some(9000), 0).grant(req(65535, 1, 0), 56);
        assert_eq!((g.reply_len, g.limited), (9000, true));
    }
}
