//! Stateful reflector sessions (RFC 8762 §4.3.2, RFC 8972 §3): keyed by the
//! sender's address and port, the local address and port, and the SSID.

use std::collections::HashMap;
use std::net::{IpAddr, SocketAddr};
use std::time::{Duration, Instant};

use stamp_wire::Timestamp;

use crate::clock::TimestampMethod;

/// What identifies a session on the reflector.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub struct SessionKey {
    /// Session-Sender address and port.
    pub peer: SocketAddr,
    /// Local address the requests arrive on (None when not known).
    pub local: Option<IpAddr>,
    /// Local port.
    pub local_port: u16,
    /// SSID (0 = none).
    pub ssid: u16,
}

/// Per-session state of a stateful reflector.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct SessionState {
    /// Sequence Number of the next reply (starts at 0).
    pub next_seq: u32,
    /// Requests received.
    pub rx_packets: u64,
    /// Replies sent.
    pub tx_packets: u64,
    /// Sequence Number and T3 of the last reply.
    pub last_reply: Option<(u32, Timestamp)>,
    /// How the last reply's T3 was taken.
    pub last_reply_method: TimestampMethod,
    /// Sequence Number of the last request.
    pub last_request_seq: Option<u32>,
    /// Monotonic time of the last request.
    pub last_seen: Instant,
    /// Monotonic time the session was created.
    pub created: Instant,
}

impl SessionState {
    fn new(now: Instant) -> Self {
        SessionState {
            next_seq: 0,
            rx_packets: 0,
            tx_packets: 0,
            last_reply: None,
            last_reply_method: TimestampMethod::UNKNOWN,
            last_request_seq: None,
            last_seen: now,
            created: now,
        }
    }
}

/// The session table: bounded, with idle expiry.
#[derive(Debug)]
pub struct SessionTable {
    map: HashMap<SessionKey, SessionState>,
    max_sessions: usize,
    idle_timeout: Duration,
}

impl SessionTable {
    /// A table holding at most `max_sessions`, expiring sessions idle for
    /// longer than `idle_timeout`.
    pub fn new(max_sessions: usize, idle_timeout: Duration) -> Self {
        SessionTable {
            map: HashMap::new(),
            max_sessions,
            idle_timeout,
        }
    }

    /// The session for `key`, created if there is room. `None` when the
    /// table is full.
    pub fn get_or_create(
        &mut self,
        key: SessionKey,
        now: Instant,
    ) -> Option<(&mut SessionState, bool)> {
        let len = self.map.len();
        match self.map.entry(key) {
            std::collections::hash_map::Entry::Occupied(e) => Some((e.into_mut(), false)),
            std::collections::hash_map::Entry::Vacant(v) => {
                if len >= self.max_sessions {
                    None
                } else {
                    Some((v.insert(SessionState::new(now)), true))
                }
            }
        }
    }

    /// Look a session up.
    pub fn get(&self, key: &SessionKey) -> Option<&SessionState> {
        self.map.get(key)
    }

    /// Remove sessions idle for longer than the timeout; returns how many.
    pub fn expire(&mut self, now: Instant) -> usize {
        let before = self.map.len();
        let timeout = self.idle_timeout;
        self.map
            .retain(|_, s| now.saturating_duration_since(s.last_seen) <= timeout);
        before - self.map.len()
    }

    /// Number of live sessions.
    pub fn len(&self) -> usize {
        self.map.len()
    }

    /// Is the table empty?
    pub fn is_empty(&self) -> bool {
        self.map.is_empty()
    }

    /// Every session.
    pub fn iter(&self) -> impl Iterator<Item = (&SessionKey, &SessionState)> {
        self.map.iter()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn key(port: u16, ssid: u16) -> SessionKey {
        SessionKey {
            peer: SocketAddr::from(([127, 0, 0, 1], port)),
            local: None,
            local_port: 862,
            ssid,
        }
    }

    #[test]
    fn ssid_is_part_of_the_key() {
        let now = Instant::now();
        let mut t = SessionTable::new(10, Duration::from_secs(5));
        t.get_or_create(key(1000, 1), now).unwrap().0.next_seq = 5;
        let (s, created) = t.get_or_create(key(1000, 2), now).unwrap();
        assert!(created);
        assert_eq!(s.next_seq, 0);
        assert_eq!(t.get(&key(1000, 1)).unwrap().next_seq, 5);
    }

    #[test]
    fn cap_refuses_new_sessions_but_serves_old_ones() {
        let now = Instant::now();
        let mut t = SessionTable::new(1, Duration::from_secs(5));
        assert!(t.get_or_create(key(1, 0), now).is_some());
        assert!(t.get_or_create(key(2, 0), now).is_none());
        assert!(t.get_or_create(key(1, 0), now).is_some());
    }

    #[test]
    fn idle_sessions_expire() {
        let now = Instant::now();
        let mut t = SessionTable::new(10, Duration::from_secs(5));
        t.get_or_create(key(1, 0), now);
        t.get_or_create(key(2, 0), now).unwrap().0.last_seen = now + Duration::from_secs(4);
        assert_eq!(t.expire(now + Duration::from_secs(6)), 1);
        assert!(t.get(&key(2, 0)).is_some());
    }
}
