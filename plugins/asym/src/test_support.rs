//! Hand-built reflector contexts for the unit tests.

use std::net::{IpAddr, Ipv4Addr, SocketAddr};

use stamp_core::clock::{SyncSource, TimestampMethod, UnixNanos};
use stamp_core::transport::RecvMeta;
use stamp_core::{
    ClockFacts, ReflectContext, ReplyPlan, SessionCounters, TlvHandler, TlvSlot, TlvVerdict,
};
use stamp_wire::{AuthMode, ErrorEstimate, TimestampFormat};

/// A request from 198.51.100.2:40000 to 192.0.2.1:862, unauthenticated.
pub(crate) struct Fixture {
    pub meta: RecvMeta,
    pub mode: AuthMode,
}

/// What one `reflect` call left behind.
pub(crate) struct Reflected {
    /// The TLV area afterwards (the TLV and everything around it).
    pub area: Vec<u8>,
    pub verdict: TlvVerdict,
    pub plan: ReplyPlan,
}

impl Fixture {
    pub fn v4() -> Self {
        Fixture {
            meta: RecvMeta {
                len: 0,
                src: SocketAddr::from(([198, 51, 100, 2], 40000)),
                dst: Some(IpAddr::V4(Ipv4Addr::new(192, 0, 2, 1))),
                dst_port: 862,
                ifindex: 3,
                ttl: Some(64),
                tos: Some(0),
                rx_time: None,
                ip_header_len: 0,
            },
            mode: AuthMode::Open,
        }
    }

    /// Run `h.reflect` on the TLV at `offset` of the TLV area `area` (the
    /// request is the base packet plus `area`), with `plan` as the earlier
    /// handlers left it.
    pub fn reflect_with(
        &self,
        h: &dyn TlvHandler,
        area: &[u8],
        offset: usize,
        mut plan: ReplyPlan,
    ) -> Reflected {
        let mut area = area.to_vec();
        let len = u16::from_be_bytes([area[offset + 2], area[offset + 3]]) as usize;
        assert!(offset + 4 + len <= area.len(), "fixture TLV overruns");
        let mut ctx = ReflectContext {
            meta: &self.meta,
            mode: self.mode,
            request_seq: 7,
            reply_seq: 7,
            ssid: 0x1234,
            counters: SessionCounters::default(),
            clock: ClockFacts {
                format: TimestampFormat::Ntp,
                error_estimate: ErrorEstimate::new(true, TimestampFormat::Ntp, 0, 1),
                sync_source: SyncSource::NTP,
                rx_method: TimestampMethod::SW_LOCAL,
                tx_method: TimestampMethod::SW_LOCAL,
            },
            receive_time: UnixNanos(0),
            plan: &mut plan,
            ip_header: None,
        };
        let mut slot = TlvSlot::new(&mut area, offset, len);
        let verdict = h.reflect(&mut slot, &mut ctx);
        Reflected {
            area,
            verdict,
            plan,
        }
    }

    /// Run `h.reflect` on `tlv`, the only TLV of the request.
    pub fn reflect(&self, h: &dyn TlvHandler, tlv: &[u8]) -> Reflected {
        self.reflect_with(h, tlv, 0, ReplyPlan::for_request(&self.meta))
    }
}
