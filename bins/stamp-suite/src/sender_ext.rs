//! Sender pieces for the reflected-header TLVs
//! (draft-ietf-ippm-stamp-ext-hdr): the per-target TLV options and the IPv6
//! Destination Options header the sender adds to its requests.

use std::net::SocketAddr;
use std::os::fd::AsFd;

use stamp_core::TlvOptions;
use stamp_net::UdpTransport;

/// The TLV options for one target: `target-family` (`ipv4` / `ipv6`) added
/// unless `--tlv-opt` set it, so the Reflected Fixed Header Data TLV has the
/// target family's length.
pub fn target_options(opts: &TlvOptions, target: SocketAddr) -> TlvOptions {
    let mut o = opts.clone();
    if o.get("target-family").is_none() {
        let family = if target.ip().to_canonical().is_ipv6() {
            "ipv6"
        } else {
            "ipv4"
        };
        o.set("target-family", family);
    }
    o
}

/// `--ipv6-dest-opt-len N`: every request carries an N-octet Destination
/// Options header (sticky IPV6_DSTOPTS on the socket; needs CAP_NET_RAW).
pub fn set_destination_options(
    transport: &UdpTransport,
    len: Option<u16>,
    target: SocketAddr,
) -> Result<(), String> {
    let Some(len) = len else {
        return Ok(());
    };
    if !target.ip().to_canonical().is_ipv6() {
        return Err(format!(
            "--ipv6-dest-opt-len {len}: needs an IPv6 target, not {target}"
        ));
    }
    let header = stamp_net::exthdr::destination_options(usize::from(len)).ok_or_else(|| {
        format!("--ipv6-dest-opt-len {len}: must be a multiple of 8 from 8 to 2048")
    })?;
    stamp_net::exthdr::set_destination_options(transport.socket().as_fd(), &header).map_err(|e| {
        format!("--ipv6-dest-opt-len {len}: cannot set IPV6_DSTOPTS (needs CAP_NET_RAW): {e}")
    })
}

/// The draft puts Reflected Fixed Header Data TLVs before Reflected IPv6
/// Extension Header Data TLVs; templates come in type-code order (246 before
/// 247 with the default codes), so move the fixed-header ones first.
pub fn order_templates(
    registry: &stamp_core::Registry,
    mut templates: Vec<stamp_core::TlvTemplate>,
) -> Vec<stamp_core::TlvTemplate> {
    let fixed = registry.code_of("reflected-fixed-header");
    let ext = registry.code_of("reflected-ipv6-ext-header");
    if let (Some(fixed), Some(ext)) = (fixed, ext) {
        let first_ext = templates.iter().position(|t| t.tlv_type == ext);
        let fixed_at = templates.iter().position(|t| t.tlv_type == fixed);
        if let (Some(e), Some(f)) = (first_ext, fixed_at) {
            if f > e {
                let t = templates.remove(f);
                templates.insert(e, t);
            }
        }
    }
    templates
}

/// draft-ietf-ippm-stamp-ext-hdr: requests (and so replies, which keep
/// their size) MUST fit the MTU, dropping the optional header TLVs first.
/// When a request toward `target` would not fit the MTU of the route to it,
/// the Reflected IPv6 Extension Header Data TLVs go first (the last one
/// first), then the Reflected Fixed Header Data TLV, each with one warning
/// line; what still does not fit is sent anyway (fragmented) after a
/// warning. An unknown MTU (no route yet) leaves the request as it is.
pub fn fit_path_mtu(
    registry: &stamp_core::Registry,
    config: &stamp_core::sender::SenderConfig,
    mut templates: Vec<stamp_core::TlvTemplate>,
    target: SocketAddr,
    dest_opt_len: Option<u16>,
) -> Result<Vec<stamp_core::TlvTemplate>, String> {
    #[cfg(target_os = "linux")]
    let mtu = stamp_net::exthdr::path_mtu(target).ok();
    #[cfg(not(target_os = "linux"))]
    let mtu: Option<usize> = None;
    let Some(mtu) = mtu else {
        return Ok(templates);
    };
    // IP and UDP headers, and the sender's own Destination Options header.
    let headers = if target.ip().to_canonical().is_ipv6() {
        40 + 8 + usize::from(dest_opt_len.unwrap_or(0))
    } else {
        20 + 8
    };
    let room = mtu.saturating_sub(headers);
    let len = |t: &[stamp_core::TlvTemplate]| {
        stamp_core::sender::SenderSession::new(config.clone(), registry.clone(), t.to_vec())
            .map(|s| s.packet_len())
    };
    let mut request = len(&templates)?;
    for name in ["reflected-ipv6-ext-header", "reflected-fixed-header"] {
        let Some(code) = registry.code_of(name) else {
            continue;
        };
        while request > room {
            let Some(at) = templates.iter().rposition(|t| t.tlv_type == code) else {
                break;
            };
            let dropped = templates.remove(at);
            let before = request;
            request = len(&templates)?;
            tracing::warn!(
                %target,
                mtu,
                tlv = name,
                "a {before}-octet request does not fit the path MTU: the {}-octet {name} TLV is left out",
                dropped.value.len() + 4
            );
        }
    }
    if request > room {
        tracing::warn!(
            %target,
            mtu,
            "requests of {request} octets exceed the path MTU ({room} octets of UDP payload): they will be fragmented"
        );
    }
    Ok(templates)
}
