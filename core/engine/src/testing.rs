//! Hand-built reflector contexts for TLV handler unit tests (feature
//! `testing`). Plugin crates enable the feature in their dev-dependencies
//! and test a handler's `reflect`, `request` and `decode` without a
//! Reflector or a socket.

use std::net::{IpAddr, Ipv4Addr, SocketAddr};

use stamp_wire::{AuthMode, ErrorEstimate, TimestampFormat};

use crate::clock::{SyncSource, TimestampMethod, UnixNanos};
use crate::handler::{
    ClockFacts, ReflectContext, ReplyPlan, SessionCounters, TlvHandler, TlvSlot, TlvVerdict,
};
use crate::transport::RecvMeta;
use crate::TlvOptions;

/// A request from 198.51.100.2:40000 to 192.0.2.1:862 (interface 3), TTL 64,
/// TOS 0, unauthenticated, reflector clock NTP with software timestamps.
/// Change the public fields to vary it.
#[derive(Debug, Clone)]
pub struct Fixture {
    /// Receive metadata of the request.
    pub meta: RecvMeta,
    /// Session counters the handler sees.
    pub counters: SessionCounters,
    /// Clock facts the handler sees.
    pub clock: ClockFacts,
    /// Authentication mode.
    pub mode: AuthMode,
    /// The received IP header the handler sees (`None`: a UDP transport).
    pub ip_header: Option<Vec<u8>>,
}

impl Fixture {
    /// The IPv4 fixture described above.
    pub fn v4() -> Self {
        let meta = RecvMeta {
            len: 0,
            src: SocketAddr::from(([198, 51, 100, 2], 40000)),
            dst: Some(IpAddr::V4(Ipv4Addr::new(192, 0, 2, 1))),
            dst_port: 862,
            ifindex: 3,
            ttl: Some(64),
            tos: Some(0),
            rx_time: None,
            ip_header_len: 0,
        };
        let clock = ClockFacts {
            format: TimestampFormat::Ntp,
            error_estimate: ErrorEstimate::new(true, TimestampFormat::Ntp, 0, 1),
            sync_source: SyncSource::NTP,
            rx_method: TimestampMethod::SW_LOCAL,
            tx_method: TimestampMethod::SW_LOCAL,
        };
        Fixture {
            meta,
            counters: SessionCounters::default(),
            clock,
            mode: AuthMode::Open,
            ip_header: None,
        }
    }

    /// Run `h.reflect` on `tlv` (one whole TLV, header included, whose Length
    /// fits) and return the TLV afterwards, the verdict and the plan.
    pub fn reflect(&self, h: &dyn TlvHandler, tlv: &[u8]) -> (Vec<u8>, TlvVerdict, ReplyPlan) {
        self.reflect_at(h, tlv, 0)
    }

    /// Run `h.reflect` on the TLV at `offset` of the TLV area `area`; return
    /// that TLV afterwards, the verdict and the plan.
    pub fn reflect_at(
        &self,
        h: &dyn TlvHandler,
        area: &[u8],
        offset: usize,
    ) -> (Vec<u8>, TlvVerdict, ReplyPlan) {
        let (area, verdict, plan) = self.run(h, area, offset);
        let len = u16::from_be_bytes([area[offset + 2], area[offset + 3]]) as usize;
        (area[offset..offset + 4 + len].to_vec(), verdict, plan)
    }

    /// The whole TLV area after `h.reflect` ran on the TLV at `offset`.
    pub fn reflect_area(&self, h: &dyn TlvHandler, area: &[u8], offset: usize) -> Vec<u8> {
        self.run(h, area, offset).0
    }

    /// The whole TLV area, the verdict and the plan after `h.reflect` ran on
    /// the TLV at `offset`.
    pub fn run(
        &self,
        h: &dyn TlvHandler,
        area: &[u8],
        offset: usize,
    ) -> (Vec<u8>, TlvVerdict, ReplyPlan) {
        let mut area = area.to_vec();
        let len = u16::from_be_bytes([area[offset + 2], area[offset + 3]]) as usize;
        assert!(offset + 4 + len <= area.len(), "fixture TLV overruns");
        let mut plan = ReplyPlan::for_request(&self.meta);
        let mut ctx = ReflectContext {
            meta: &self.meta,
            mode: self.mode,
            request_seq: 7,
            reply_seq: 7,
            ssid: 0x1234,
            counters: self.counters,
            clock: self.clock,
            receive_time: UnixNanos(0),
            plan: &mut plan,
            ip_header: self.ip_header.as_deref(),
        };
        let mut slot = TlvSlot::new(&mut area, offset, len);
        let verdict = h.reflect(&mut slot, &mut ctx);
        (area, verdict, plan)
    }
}

/// The request Value `h` builds for `opts` (pairs of key, value).
pub fn request_value(h: &dyn TlvHandler, opts: &[(&str, &str)]) -> Result<Option<Vec<u8>>, String> {
    let mut o = TlvOptions::new();
    for (k, v) in opts {
        o.set(*k, *v);
    }
    Ok(h.request(&o)?.map(|t| {
        assert_eq!(t.tlv_type, h.tlv_type());
        t.value
    }))
}

/// Metadata of a reply received from 192.0.2.1:862 at 198.51.100.2:40000.
pub fn reply_meta(tos: Option<u8>) -> RecvMeta {
    RecvMeta {
        len: 0,
        src: SocketAddr::from(([192, 0, 2, 1], 862)),
        dst: Some(IpAddr::V4(Ipv4Addr::new(198, 51, 100, 2))),
        dst_port: 40000,
        ifindex: 0,
        ttl: Some(60),
        tos,
        rx_time: None,
        ip_header_len: 0,
    }
}
