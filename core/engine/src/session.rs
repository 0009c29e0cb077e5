//! Stateful reflector sessions (RFC 8762 §4.3.2, RFC 8972 §3): keyed by the
//! sender's address and port, the local address and port, and the SSID.
//!
//! The table is built for a reflector's hot path:
//!
//! * O(1) lookup: an open-addressing index (linear probing, backward-shift
//!   deletion) of `u32` slots pointing into a dense slab of entries. The hash
//!   is SipHash with per-table random keys (`RandomState`), so a sender cannot
//!   aim collisions at the table.
//! * No allocation per packet, not even when a session is created: slab and
//!   index are reserved when the table is made (for up to [`PREALLOCATED`]
//!   sessions; the pages are only touched as sessions arrive, so the reserve
//!   costs address space, not memory).
//! * Compact: keys are stored packed ([`PackedKey`], 44 octets), one entry is
//!   [`SessionTable::ENTRY_SIZE`] octets (144 on 64-bit Linux, LRU links
//!   included) plus 8 octets of index, so a million sessions take about
//!   153 MB.
//! * Bounded with least-recently-used eviction: every lookup moves its
//!   session to the front of an intrusive doubly-linked list threaded
//!   through the slab (two `u32` links per entry); a new session arriving
//!   at a full table evicts the list's tail, the session idle longest, in
//!   O(1), and [`SessionTable::evictions`] counts it. A flood of new keys
//!   therefore recycles the oldest sessions instead of locking new senders
//!   out; a sender whose session was evicted starts again at Sequence
//!   Number 0 (as after an idle expiry).
//! * Idle expiry is incremental: each [`SessionTable::expire`] call looks at
//!   most [`SessionTable::expire_budget`] entries from a cursor that walks
//!   the slab, so one call never stalls the packets queued behind it. A
//!   session is forgotten between `idle_timeout` and `idle_timeout` plus one
//!   sweep of the table after its last packet.

use std::collections::hash_map::RandomState;
use std::hash::{BuildHasher, Hash};
use std::net::{IpAddr, Ipv4Addr, Ipv6Addr, SocketAddr, SocketAddrV6};
use std::time::{Duration, Instant};

use stamp_wire::Timestamp;

use crate::clock::TimestampMethod;

/// Sessions the table reserves room for up front (at most); a larger
/// `max_sessions` grows the table past this, once, when it gets there.
pub const PREALLOCATED: usize = 1 << 20;

/// Entries one [`SessionTable::expire`] call examines by default.
pub const DEFAULT_EXPIRE_BUDGET: usize = 4096;

/// End of the LRU list.
const NIL: u32 = u32::MAX;

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

const PEER_V4: u8 = 1;
const LOCAL_SET: u8 = 2;
const LOCAL_V4: u8 = 4;

/// A [`SessionKey`] as stored: addresses as 16 octets (IPv4 mapped), the
/// IPv6 scope kept (link-local peers on two interfaces are two sessions),
/// the flow label dropped (a sender may change it between packets).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub struct PackedKey {
    peer_ip: [u8; 16],
    local_ip: [u8; 16],
    peer_scope: u32,
    peer_port: u16,
    local_port: u16,
    ssid: u16,
    flags: u8,
}

impl PackedKey {
    fn pack(k: &SessionKey) -> Self {
        let mut flags = 0;
        let (peer_ip, peer_scope) = match k.peer {
            SocketAddr::V4(a) => {
                flags |= PEER_V4;
                (a.ip().to_ipv6_mapped().octets(), 0)
            }
            SocketAddr::V6(a) => (a.ip().octets(), a.scope_id()),
        };
        let local_ip = match k.local {
            None => [0; 16],
            Some(IpAddr::V4(a)) => {
                flags |= LOCAL_SET | LOCAL_V4;
                a.to_ipv6_mapped().octets()
            }
            Some(IpAddr::V6(a)) => {
                flags |= LOCAL_SET;
                a.octets()
            }
        };
        PackedKey {
            peer_ip,
            local_ip,
            peer_scope,
            peer_port: k.peer.port(),
            local_port: k.local_port,
            ssid: k.ssid,
            flags,
        }
    }

    fn unpack(&self) -> SessionKey {
        let v6 = Ipv6Addr::from(self.peer_ip);
        let peer = if self.flags & PEER_V4 != 0 {
            let v4 = v6.to_ipv4_mapped().unwrap_or(Ipv4Addr::UNSPECIFIED);
            SocketAddr::new(IpAddr::V4(v4), self.peer_port)
        } else {
            SocketAddr::V6(SocketAddrV6::new(v6, self.peer_port, 0, self.peer_scope))
        };
        let local = if self.flags & LOCAL_SET == 0 {
            None
        } else {
            let l = Ipv6Addr::from(self.local_ip);
            Some(if self.flags & LOCAL_V4 != 0 {
                IpAddr::V4(l.to_ipv4_mapped().unwrap_or(Ipv4Addr::UNSPECIFIED))
            } else {
                IpAddr::V6(l)
            })
        };
        SessionKey {
            peer,
            local,
            local_port: self.local_port,
            ssid: self.ssid,
        }
    }
}

#[derive(Debug, Clone, Copy)]
struct Entry {
    key: PackedKey,
    /// Low 32 bits of the key's hash: where its probe starts, and a cheap
    /// first comparison.
    hash: u32,
    /// Neighbour used more recently (towards the head), or [`NIL`].
    prev: u32,
    /// Neighbour used less recently (towards the tail), or [`NIL`].
    next: u32,
    state: SessionState,
}

/// Where a session sits in the table: valid until the next expiry or
/// removal (both move entries), so hold it only within one request.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct SessionHandle(u32);

/// The session table: bounded, O(1) lookup, incremental idle expiry.
#[derive(Debug)]
pub struct SessionTable {
    /// Dense slab of sessions; removal swaps the last entry into the hole.
    entries: Vec<Entry>,
    /// Open-addressing index: 0 = empty, otherwise slab position + 1. Its
    /// length is a power of two, at least twice the slab's capacity.
    index: Vec<u32>,
    hasher: RandomState,
    max_sessions: usize,
    idle_timeout: Duration,
    /// Next slab position the expiry sweep examines.
    cursor: usize,
    expire_budget: usize,
    /// Most recently used entry, or [`NIL`].
    head: u32,
    /// Least recently used entry (the next eviction), or [`NIL`].
    tail: u32,
    /// Sessions evicted to make room for new ones.
    evictions: u64,
}

impl SessionTable {
    /// Octets one session occupies in the slab, LRU links included (the
    /// index adds 8 more at its load factor of at most one half).
    pub const ENTRY_SIZE: usize = std::mem::size_of::<Entry>();

    /// A table holding at most `max_sessions`, expiring sessions idle for
    /// longer than `idle_timeout`.
    pub fn new(max_sessions: usize, idle_timeout: Duration) -> Self {
        let reserve = max_sessions.clamp(1, PREALLOCATED);
        SessionTable {
            entries: Vec::with_capacity(reserve),
            // Zeroed memory comes from calloc / fresh pages: untouched slots
            // cost no resident memory.
            index: vec![0; index_len(reserve)],
            hasher: RandomState::new(),
            max_sessions,
            idle_timeout,
            cursor: 0,
            expire_budget: DEFAULT_EXPIRE_BUDGET,
            head: NIL,
            tail: NIL,
            evictions: 0,
        }
    }

    /// Sessions evicted so far to make room for a new one in a full table.
    pub fn evictions(&self) -> u64 {
        self.evictions
    }

    /// The session that would be evicted next (the least recently used).
    pub fn lru(&self) -> Option<SessionKey> {
        (self.tail != NIL).then(|| self.entries[self.tail as usize].key.unpack())
    }

    /// Take entry `at` out of the LRU list.
    fn unlink(&mut self, at: usize) {
        let (prev, next) = (self.entries[at].prev, self.entries[at].next);
        match prev {
            NIL => self.head = next,
            p => self.entries[p as usize].next = next,
        }
        match next {
            NIL => self.tail = prev,
            n => self.entries[n as usize].prev = prev,
        }
    }

    /// Put entry `at` (not in the list) at the front of the LRU list.
    fn link_front(&mut self, at: usize) {
        let old = self.head;
        self.entries[at].prev = NIL;
        self.entries[at].next = old;
        match old {
            NIL => self.tail = at as u32,
            h => self.entries[h as usize].prev = at as u32,
        }
        self.head = at as u32;
    }

    /// Mark entry `at` as just used.
    fn touch(&mut self, at: usize) {
        if self.head != at as u32 {
            self.unlink(at);
            self.link_front(at);
        }
    }

    /// Entries one [`expire`](Self::expire) call examines.
    pub fn expire_budget(&self) -> usize {
        self.expire_budget
    }

    /// Change how many entries one [`expire`](Self::expire) call examines
    /// (at least one).
    pub fn set_expire_budget(&mut self, budget: usize) {
        self.expire_budget = budget.max(1);
    }

    fn hash(&self, key: &PackedKey) -> u32 {
        self.hasher.hash_one(key) as u32
    }

    /// Index slot holding `key`, or the empty slot where it would go.
    fn probe(&self, key: &PackedKey, hash: u32) -> (usize, Option<usize>) {
        let mask = self.index.len() - 1;
        let mut slot = hash as usize & mask;
        loop {
            match self.index[slot] {
                0 => return (slot, None),
                v => {
                    let at = v as usize - 1;
                    let e = &self.entries[at];
                    if e.hash == hash && e.key == *key {
                        return (slot, Some(at));
                    }
                }
            }
            slot = (slot + 1) & mask;
        }
    }

    /// Index slot that points at slab position `at`.
    fn slot_of(&self, at: usize) -> usize {
        let mask = self.index.len() - 1;
        let mut slot = self.entries[at].hash as usize & mask;
        let want = at as u32 + 1;
        while self.index[slot] != want {
            slot = (slot + 1) & mask;
        }
        slot
    }

    /// The session for `key`, created if it is new (evicting the least
    /// recently used session when the table is full), and marked as just
    /// used. `None` only when the table holds no session at all
    /// (`max_sessions` 0).
    pub fn get_or_create(
        &mut self,
        key: SessionKey,
        now: Instant,
    ) -> Option<(&mut SessionState, bool)> {
        let (h, created) = self.get_or_create_handle(key, now)?;
        Some((self.state_mut(h), created))
    }

    /// The session's state through a handle from
    /// [`SessionTable::get_or_create_handle`].
    pub fn state_mut(&mut self, h: SessionHandle) -> &mut SessionState {
        &mut self.entries[h.0 as usize].state
    }

    /// Like [`SessionTable::get_or_create`], but returns a handle, so a
    /// caller that must let go of the borrow in between (the reflector runs
    /// the TLV handlers between reading and updating a session) finds the
    /// session again without a second lookup.
    pub fn get_or_create_handle(
        &mut self,
        key: SessionKey,
        now: Instant,
    ) -> Option<(SessionHandle, bool)> {
        let key = PackedKey::pack(&key);
        let hash = self.hash(&key);
        let (slot, found) = self.probe(&key, hash);
        if let Some(at) = found {
            self.touch(at);
            return Some((SessionHandle(at as u32), false));
        }
        if self.max_sessions == 0 {
            return None;
        }
        let mut slot = slot;
        if self.entries.len() >= self.max_sessions {
            // Full: evict the session idle longest. Removal shifts index
            // slots, so the free slot for the new key is probed again.
            self.remove_at(self.tail as usize);
            self.evictions += 1;
            slot = self.probe(&key, hash).0;
        }
        let slot = if (self.entries.len() + 1) * 2 > self.index.len() {
            // Only past PREALLOCATED sessions: grow once, then go on.
            self.grow_index();
            self.probe(&key, hash).0
        } else {
            slot
        };
        let at = self.entries.len();
        self.entries.push(Entry {
            key,
            hash,
            prev: NIL,
            next: NIL,
            state: SessionState::new(now),
        });
        self.index[slot] = at as u32 + 1;
        self.link_front(at);
        Some((SessionHandle(at as u32), true))
    }

    fn grow_index(&mut self) {
        let len = self.index.len() * 2;
        self.index = vec![0; len];
        let mask = len - 1;
        for (at, e) in self.entries.iter().enumerate() {
            let mut slot = e.hash as usize & mask;
            while self.index[slot] != 0 {
                slot = (slot + 1) & mask;
            }
            self.index[slot] = at as u32 + 1;
        }
    }

    /// Look a session up.
    pub fn get(&self, key: &SessionKey) -> Option<&SessionState> {
        let key = PackedKey::pack(key);
        let (_, found) = self.probe(&key, self.hash(&key));
        found.map(|at| &self.entries[at].state)
    }

    /// Forget a session.
    pub fn remove(&mut self, key: &SessionKey) -> Option<SessionState> {
        let key = PackedKey::pack(key);
        let (_, found) = self.probe(&key, self.hash(&key));
        found.map(|at| self.remove_at(at))
    }

    /// Remove slab entry `at`: take it out of the LRU list, free its index
    /// slot (backward-shift deletion, so no tombstones), then move the last
    /// entry into its place.
    fn remove_at(&mut self, at: usize) -> SessionState {
        self.unlink(at);
        let mask = self.index.len() - 1;
        let mut hole = self.slot_of(at);
        let mut next = (hole + 1) & mask;
        loop {
            let v = self.index[next];
            if v == 0 {
                break;
            }
            let home = self.entries[v as usize - 1].hash as usize & mask;
            // The entry at `next` may move back into the hole when the hole
            // lies on its probe path, between its home slot and `next`.
            if (next.wrapping_sub(home) & mask) >= (next.wrapping_sub(hole) & mask) {
                self.index[hole] = v;
                hole = next;
            }
            next = (next + 1) & mask;
        }
        self.index[hole] = 0;
        let last = self.entries.len() - 1;
        if at != last {
            let moved = self.slot_of(last);
            self.index[moved] = at as u32 + 1;
        }
        let removed = self.entries.swap_remove(at).state;
        if at != last {
            // The former last entry now sits at `at`: repoint its neighbours.
            let (prev, next) = (self.entries[at].prev, self.entries[at].next);
            match prev {
                NIL => self.head = at as u32,
                p => self.entries[p as usize].next = at as u32,
            }
            match next {
                NIL => self.tail = at as u32,
                n => self.entries[n as usize].prev = at as u32,
            }
        }
        removed
    }

    /// Remove sessions idle for longer than the timeout, examining at most
    /// [`expire_budget`](Self::expire_budget) entries from where the last
    /// call stopped; returns how many were removed. Call it often (the
    /// reflector driver does, ten times a second): a full sweep of the table
    /// takes `len / budget` calls.
    pub fn expire(&mut self, now: Instant) -> usize {
        let timeout = self.idle_timeout;
        let steps = self.entries.len().min(self.expire_budget);
        let mut removed = 0;
        for _ in 0..steps {
            if self.cursor >= self.entries.len() {
                self.cursor = 0;
                if self.entries.is_empty() {
                    break;
                }
            }
            let idle = now.saturating_duration_since(self.entries[self.cursor].state.last_seen);
            if idle > timeout {
                // The last entry moves into this position: look at it next.
                self.remove_at(self.cursor);
                removed += 1;
            } else {
                self.cursor += 1;
            }
        }
        removed
    }

    /// Remove every session idle for longer than the timeout, however many
    /// there are (a full sweep: for tests and shutdown, not the hot path).
    pub fn expire_all(&mut self, now: Instant) -> usize {
        let mut removed = 0;
        let mut at = 0;
        while at < self.entries.len() {
            if now.saturating_duration_since(self.entries[at].state.last_seen) > self.idle_timeout {
                self.remove_at(at);
                removed += 1;
            } else {
                at += 1;
            }
        }
        self.cursor = 0;
        removed
    }

    /// Number of live sessions.
    pub fn len(&self) -> usize {
        self.entries.len()
    }

    /// Is the table empty?
    pub fn is_empty(&self) -> bool {
        self.entries.is_empty()
    }

    /// Most sessions kept at once.
    pub fn max_sessions(&self) -> usize {
        self.max_sessions
    }

    /// Every session (keys unpacked, so by value).
    pub fn iter(&self) -> impl Iterator<Item = (SessionKey, &SessionState)> {
        self.entries.iter().map(|e| (e.key.unpack(), &e.state))
    }
}

/// Index length for `capacity` sessions: a power of two, load at most 1/2.
fn index_len(capacity: usize) -> usize {
    (capacity * 2).next_power_of_two().max(8)
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
    fn full_table_evicts_the_least_recently_used() {
        let now = Instant::now();
        let mut t = SessionTable::new(3, Duration::from_secs(5));
        for p in 1..=3 {
            t.get_or_create(key(p, 0), now).unwrap().0.next_seq = u32::from(p);
        }
        // Use 1 again: 2 is now the least recently used.
        assert!(!t.get_or_create(key(1, 0), now).unwrap().1);
        assert_eq!(t.lru(), Some(key(2, 0)));
        let (s, created) = t.get_or_create(key(4, 0), now).unwrap();
        assert!(created);
        assert_eq!(s.next_seq, 0);
        assert_eq!(t.len(), 3);
        assert_eq!(t.evictions(), 1);
        assert!(t.get(&key(2, 0)).is_none());
        for p in [1, 3] {
            assert_eq!(t.get(&key(p, 0)).unwrap().next_seq, u32::from(p));
        }
        // Then 3, then 1 (4 was just created).
        t.get_or_create(key(5, 0), now);
        assert!(t.get(&key(3, 0)).is_none());
        t.get_or_create(key(6, 0), now);
        assert!(t.get(&key(1, 0)).is_none());
        assert_eq!(t.evictions(), 3);
        // A table of one always holds the newest session.
        let mut one = SessionTable::new(1, Duration::from_secs(5));
        assert!(one.get_or_create(key(1, 0), now).unwrap().1);
        assert!(one.get_or_create(key(2, 0), now).unwrap().1);
        assert!(one.get(&key(1, 0)).is_none());
        assert_eq!(one.evictions(), 1);
    }

    /// The LRU list agrees with a naive model (a Vec ordered by use) under
    /// any mix of lookups, creations, evictions, removals and expiry.
    #[test]
    fn lru_order_matches_a_model_under_churn() {
        let start = Instant::now();
        let cap = 64usize;
        let mut t = SessionTable::new(cap, Duration::from_secs(50));
        t.set_expire_budget(7);
        let mut model: Vec<u16> = Vec::new(); // front = most recent
        let mut x = 0x2545_f491_u32;
        for step in 0..20_000u64 {
            x ^= x << 13;
            x ^= x >> 17;
            x ^= x << 5;
            let now = start + Duration::from_millis(step);
            let p = (x % 200) as u16;
            if x % 17 == 0 {
                let gone = t.remove(&key(p, 0)).is_some();
                let was = model.iter().position(|&m| m == p);
                assert_eq!(gone, was.is_some());
                if let Some(i) = was {
                    model.remove(i);
                }
                continue;
            }
            let (s, _) = t.get_or_create(key(p, 0), now).unwrap();
            s.last_seen = now;
            if let Some(i) = model.iter().position(|&m| m == p) {
                model.remove(i);
            } else if model.len() == cap {
                model.pop();
            }
            model.insert(0, p);
            if step % 1000 == 999 {
                // Expire what is older than 50 s: nothing, timestamps are ms.
                assert_eq!(t.expire(now), 0);
            }
            assert_eq!(t.len(), model.len());
            assert_eq!(t.lru(), model.last().map(|&m| key(m, 0)));
        }
        // Walk the whole list once: it holds exactly the model, in order.
        let mut at = t.head;
        let mut order = Vec::new();
        while at != NIL {
            order.push(t.entries[at as usize].key.unpack().peer.port());
            at = t.entries[at as usize].next;
        }
        assert_eq!(order, model);
        assert!(t.evictions() > 0);
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

    #[test]
    fn keys_round_trip_through_the_packed_form() {
        let keys = [
            key(7, 9),
            SessionKey {
                peer: "[fe80::1%3]:5000".parse().unwrap(),
                local: Some("fe80::2".parse().unwrap()),
                local_port: 862,
                ssid: 1,
            },
            SessionKey {
                peer: SocketAddr::from(([192, 0, 2, 1], 1)),
                local: Some(IpAddr::V4(Ipv4Addr::new(198, 51, 100, 1))),
                local_port: 862,
                ssid: 0,
            },
        ];
        let mut t = SessionTable::new(10, Duration::from_secs(5));
        let now = Instant::now();
        for k in keys {
            assert!(t.get_or_create(k, now).unwrap().1);
            assert_eq!(PackedKey::pack(&k).unpack(), k);
        }
        // v4-mapped IPv6 and plain IPv4 stay distinct keys.
        let mapped = SessionKey {
            peer: "[::ffff:127.0.0.1]:7".parse().unwrap(),
            ..key(7, 9)
        };
        assert!(t.get(&mapped).is_none());
        let mut seen: Vec<SessionKey> = t.iter().map(|(k, _)| k).collect();
        seen.sort_by_key(|k| k.peer.port());
        assert_eq!(seen.len(), 3);
    }

    #[test]
    fn many_sessions_survive_removals_in_any_order() {
        let now = Instant::now();
        let n = 5000u16;
        let mut t = SessionTable::new(usize::from(n), Duration::from_secs(5));
        for p in 0..n {
            t.get_or_create(key(p, p % 7), now).unwrap().0.next_seq = u32::from(p);
        }
        assert_eq!(t.len(), usize::from(n));
        // Remove every third, then check every key left resolves to its state.
        for p in (0..n).step_by(3) {
            assert_eq!(
                t.remove(&key(p, p % 7)).map(|s| s.next_seq),
                Some(u32::from(p))
            );
        }
        for p in 0..n {
            let got = t.get(&key(p, p % 7)).map(|s| s.next_seq);
            if p % 3 == 0 {
                assert_eq!(got, None);
            } else {
                assert_eq!(got, Some(u32::from(p)), "port {p}");
            }
        }
    }

    #[test]
    fn expiry_is_bounded_per_call_and_sweeps_everything_eventually() {
        let now = Instant::now();
        let mut t = SessionTable::new(1000, Duration::from_secs(5));
        t.set_expire_budget(100);
        for p in 0..1000 {
            t.get_or_create(key(p, 0), now);
        }
        // Half stay busy.
        for p in (0..1000).step_by(2) {
            t.get_or_create(key(p, 0), now).unwrap().0.last_seen = now + Duration::from_secs(10);
        }
        let later = now + Duration::from_secs(11);
        let first = t.expire(later);
        assert!(first <= 100, "{first}");
        let mut total = first;
        for _ in 0..20 {
            total += t.expire(later);
        }
        assert_eq!(total, 500);
        assert_eq!(t.len(), 500);
        for p in (0..1000).step_by(2) {
            assert!(t.get(&key(p, 0)).is_some());
        }
    }

    #[test]
    fn entries_stay_compact() {
        // A million sessions in well under 256 MiB: slab entry plus index.
        const { assert!(SessionTable::ENTRY_SIZE <= 144) };
        assert_eq!(std::mem::size_of::<PackedKey>(), 44);
    }
}
