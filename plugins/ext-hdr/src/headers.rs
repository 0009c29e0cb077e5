//! Walking a received IP header: the IPv4 header (RFC 791 §3.1), the IPv6
//! fixed header (RFC 8200 §3) and the IPv6 extension header chain (RFC 8200
//! §4; RFC 4302 for AH, whose length counts 4-octet units).

/// Length of the IPv4 header without options.
pub const IPV4_FIXED_LEN: usize = 20;
/// Length of the IPv6 fixed header.
pub const IPV6_FIXED_LEN: usize = 40;

/// The IP version in the first nibble, when the header is long enough for
/// its fixed part.
pub fn version(hdr: &[u8]) -> Option<u8> {
    let v = hdr.first()? >> 4;
    match v {
        4 if hdr.len() >= IPV4_FIXED_LEN => Some(4),
        6 if hdr.len() >= IPV6_FIXED_LEN => Some(6),
        _ => None,
    }
}

/// Length of the fixed header of `hdr`: 20 (IPv4, options excluded) or 40
/// (IPv6); `None` when it is neither.
pub fn fixed_len(hdr: &[u8]) -> Option<usize> {
    match version(hdr)? {
        4 => Some(IPV4_FIXED_LEN),
        _ => Some(IPV6_FIXED_LEN),
    }
}

/// Next Header values that are IPv6 extension headers (IANA "IPv6
/// Extension Header Types"); ESP (50) is left out: nothing after it can be
/// parsed.
pub fn is_extension_header(next: u8) -> bool {
    matches!(next, 0 | 43 | 44 | 51 | 60 | 135 | 139 | 140 | 253 | 254)
}

/// Short name of an extension header type for reports.
pub fn extension_header_name(next: u8) -> &'static str {
    match next {
        0 => "hop-by-hop",
        43 => "routing",
        44 => "fragment",
        51 => "ah",
        60 => "dest-opts",
        135 => "mobility",
        139 => "hip",
        140 => "shim6",
        253 | 254 => "experimental",
        _ => "other",
    }
}

/// One extension header in a received IPv6 header.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct ExtHeader {
    /// Its type (the Next Header value of the header before it).
    pub kind: u8,
    /// Offset in the received header.
    pub offset: usize,
    /// Length in octets.
    pub len: usize,
}

/// The extension headers of an IPv6 header, outermost first. Stops at the
/// first header that is not an extension header or does not fit.
#[derive(Debug, Clone)]
pub struct ExtHeaders<'a> {
    hdr: &'a [u8],
    next: u8,
    offset: usize,
}

/// Iterate the extension headers of `hdr` (empty for anything but IPv6).
pub fn extension_headers(hdr: &[u8]) -> ExtHeaders<'_> {
    if version(hdr) == Some(6) {
        ExtHeaders {
            hdr,
            next: hdr[6],
            offset: IPV6_FIXED_LEN,
        }
    } else {
        ExtHeaders {
            hdr,
            next: 59, // No Next Header
            offset: hdr.len(),
        }
    }
}

impl Iterator for ExtHeaders<'_> {
    type Item = ExtHeader;
    fn next(&mut self) -> Option<ExtHeader> {
        if !is_extension_header(self.next) {
            return None;
        }
        let h = self.hdr.get(self.offset..self.offset + 2)?;
        let len = match self.next {
            44 => 8,
            51 => (usize::from(h[1]) + 2) * 4,
            _ => (usize::from(h[1]) + 1) * 8,
        };
        if self.offset + len > self.hdr.len() {
            self.next = 59;
            return None;
        }
        let item = ExtHeader {
            kind: self.next,
            offset: self.offset,
            len,
        };
        self.next = h[0];
        self.offset += len;
        Some(item)
    }
}
