//! A user-space UDP impairment relay for tests.
//!
//! The kernel here has no netem, so delay, reordering, duplication, loss and
//! corruption come from this relay. It sits between a sender and a
//! reflector: the sender sends to [`Relay::addr`], the relay forwards each
//! datagram from its own socket to the upstream (the reflector) and sends
//! what comes back to the last client address. Each direction has its own
//! [`Impairment`], driven by a seeded generator so a run is repeatable, and
//! the relay records what it did to every datagram ([`Record`]) so a test
//! can compare the tool's figures with the truth.
//!
//! Release times are kept by a scheduler thread with 1 ns timer slack; a
//! datagram leaves within tens of microseconds of its due time on an idle
//! machine.

use std::cmp::Reverse;
use std::collections::BinaryHeap;
use std::io;
use std::net::{IpAddr, Ipv4Addr, Ipv6Addr, SocketAddr, UdpSocket};
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::mpsc;
use std::sync::{Arc, Mutex};
use std::thread::JoinHandle;
use std::time::{Duration, Instant};

use std::os::fd::AsRawFd;

use nix::sys::socket::{setsockopt, sockopt};

use crate::netns::Netns;

/// What the relay does to one direction of traffic. Probabilities are in
/// 0.0..=1.0 and drawn independently per datagram.
#[derive(Debug, Clone, PartialEq)]
pub struct Impairment {
    /// Added to every datagram's transit.
    pub delay: Duration,
    /// Probability that a datagram is dropped.
    pub loss: f64,
    /// Probability that a datagram is sent twice.
    pub duplicate: f64,
    /// Probability that a datagram is held back and sent right after the
    /// next datagram of the same direction (one swap; never two held at once).
    pub reorder: f64,
    /// Probability that a datagram gets bits flipped.
    pub corrupt: f64,
    /// How many distinct bits are flipped in a corrupted datagram.
    pub corrupt_bits: u32,
    /// Octet range `[from, to)` of the datagram where bits may be flipped
    /// (clamped to its length).
    pub corrupt_range: (usize, usize),
}

impl Impairment {
    /// Pass everything through untouched.
    pub fn none() -> Impairment {
        Impairment {
            delay: Duration::ZERO,
            loss: 0.0,
            duplicate: 0.0,
            reorder: 0.0,
            corrupt: 0.0,
            corrupt_bits: 0,
            corrupt_range: (0, usize::MAX),
        }
    }

    /// Only a fixed delay.
    pub fn delay(d: Duration) -> Impairment {
        Impairment {
            delay: d,
            ..Impairment::none()
        }
    }
}

/// What the relay did to one datagram.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Action {
    /// Position of the datagram in its direction, from 0.
    pub index: u64,
    /// Its length in octets.
    pub len: usize,
    /// Dropped (nothing else applies).
    pub dropped: bool,
    /// Sent twice.
    pub duplicated: bool,
    /// Held back and sent after the next datagram.
    pub reordered: bool,
    /// Bit positions flipped (bit `i` is `1 << (7 - i % 8)` of octet `i / 8`).
    pub flipped: Vec<usize>,
}

/// The actions of one direction, in arrival order.
#[derive(Debug, Clone, Default)]
pub struct Log(pub Vec<Action>);

impl Log {
    /// Datagrams that arrived at the relay.
    pub fn seen(&self) -> usize {
        self.0.len()
    }
    /// Datagrams dropped.
    pub fn dropped(&self) -> usize {
        self.0.iter().filter(|a| a.dropped).count()
    }
    /// Datagrams sent twice.
    pub fn duplicated(&self) -> usize {
        self.0.iter().filter(|a| a.duplicated).count()
    }
    /// Datagrams sent after their successor.
    pub fn reordered(&self) -> usize {
        self.0.iter().filter(|a| a.reordered).count()
    }
    /// Bits flipped in total.
    pub fn bits_flipped(&self) -> usize {
        self.0.iter().map(|a| a.flipped.len()).sum()
    }
}

/// Everything the relay did, per direction.
#[derive(Debug, Clone, Default)]
pub struct Record {
    /// Client (sender) to upstream (reflector).
    pub forward: Log,
    /// Upstream to client.
    pub backward: Log,
}

/// xorshift64*: small, seeded, good enough for test impairments.
struct Rng(u64);

impl Rng {
    fn new(seed: u64) -> Rng {
        Rng(seed.wrapping_mul(0x9E37_79B9_7F4A_7C15) | 1)
    }
    fn next(&mut self) -> u64 {
        let mut x = self.0;
        x ^= x >> 12;
        x ^= x << 25;
        x ^= x >> 27;
        self.0 = x;
        x.wrapping_mul(0x2545_F491_4F6C_DD1D)
    }
    fn chance(&mut self, p: f64) -> bool {
        p > 0.0 && (self.next() >> 11) as f64 / (1u64 << 53) as f64 <= p
    }
    fn below(&mut self, n: usize) -> usize {
        (self.next() % n as u64) as usize
    }
}

#[derive(Clone, Copy, PartialEq, Eq, Debug)]
enum Dir {
    Forward,
    Backward,
}

struct Due {
    at: Instant,
    seq: u64,
    dir: Dir,
    bytes: Vec<u8>,
}

impl PartialEq for Due {
    fn eq(&self, o: &Self) -> bool {
        (self.at, self.seq) == (o.at, o.seq)
    }
}
impl Eq for Due {}
impl PartialOrd for Due {
    fn partial_cmp(&self, o: &Self) -> Option<std::cmp::Ordering> {
        Some(self.cmp(o))
    }
}
impl Ord for Due {
    fn cmp(&self, o: &Self) -> std::cmp::Ordering {
        (self.at, self.seq).cmp(&(o.at, o.seq))
    }
}

/// One direction's impairment state.
struct Side {
    imp: Impairment,
    rng: Rng,
    log: Arc<Mutex<Log>>,
    held: Option<(Vec<u8>, Instant)>,
}

impl Side {
    /// Apply the impairment to a datagram that arrived at `now`; returns
    /// what to schedule (release time, bytes), in order.
    fn apply(&mut self, mut bytes: Vec<u8>, now: Instant) -> Vec<(Instant, Vec<u8>)> {
        let mut log = self.log.lock().unwrap();
        let mut act = Action {
            index: log.0.len() as u64,
            len: bytes.len(),
            ..Action::default()
        };
        let at = now + self.imp.delay;
        let mut out = Vec::new();
        if self.rng.chance(self.imp.loss) {
            act.dropped = true;
            log.0.push(act);
            return out;
        }
        if self.rng.chance(self.imp.corrupt) && self.imp.corrupt_bits > 0 {
            let from = self.imp.corrupt_range.0.min(bytes.len());
            let to = self.imp.corrupt_range.1.min(bytes.len());
            let span_bits = (to - from) * 8;
            let want = (self.imp.corrupt_bits as usize).min(span_bits);
            while act.flipped.len() < want {
                let bit = from * 8 + self.rng.below(span_bits);
                if !act.flipped.contains(&bit) {
                    act.flipped.push(bit);
                    bytes[bit / 8] ^= 1 << (7 - bit % 8);
                }
            }
            act.flipped.sort_unstable();
        }
        if self.held.is_none() && self.rng.chance(self.imp.reorder) {
            act.reordered = true;
            log.0.push(act);
            self.held = Some((bytes, at));
            return out;
        }
        let duplicate = self.rng.chance(self.imp.duplicate);
        act.duplicated = duplicate;
        if duplicate {
            out.push((at, bytes.clone()));
        }
        out.push((at, bytes));
        if let Some((held, held_at)) = self.held.take() {
            // After this one, whatever their due times were.
            out.push((at.max(held_at), held));
        }
        log.0.push(act);
        out
    }

    /// A held datagram whose successor never came: send it after `limit`,
    /// and it no longer counts as reordered.
    fn expire_held(&mut self, now: Instant, limit: Duration) -> Option<(Instant, Vec<u8>)> {
        let (_, at) = self.held.as_ref()?;
        if now.duration_since(*at) < limit {
            return None;
        }
        let (bytes, at) = self.held.take().unwrap();
        let mut log = self.log.lock().unwrap();
        if let Some(a) = log.0.iter_mut().rev().find(|a| a.reordered) {
            a.reordered = false;
        }
        Some((at.max(now), bytes))
    }
}

/// A running relay; stopped (threads joined) by [`Relay::stop`] or on drop.
pub struct Relay {
    addr: SocketAddr,
    stop: Arc<AtomicBool>,
    threads: Vec<JoinHandle<()>>,
    forward: Arc<Mutex<Log>>,
    backward: Arc<Mutex<Log>>,
}

fn unspecified(like: &SocketAddr) -> SocketAddr {
    match like.ip() {
        IpAddr::V4(_) => SocketAddr::new(Ipv4Addr::UNSPECIFIED.into(), 0),
        IpAddr::V6(_) => SocketAddr::new(Ipv6Addr::UNSPECIFIED.into(), 0),
    }
}

fn sockets(listen: SocketAddr, upstream: SocketAddr) -> io::Result<(UdpSocket, UdpSocket)> {
    let l = UdpSocket::bind(listen)?;
    let u = UdpSocket::bind(unspecified(&upstream))?;
    u.connect(upstream)?;
    Ok((l, u))
}

/// `recv_from` that also sets `arrived` to the kernel's receive time of the
/// datagram (SO_TIMESTAMPNS), so the relay's own wake-up latency is not
/// added to the delay it injects.
fn recv_stamped(
    sock: &UdpSocket,
    buf: &mut [u8],
    arrived: &mut Instant,
) -> io::Result<(usize, SocketAddr)> {
    use nix::sys::socket::{recvmsg, ControlMessageOwned, MsgFlags, SockaddrStorage};
    let mut iov = [io::IoSliceMut::new(buf)];
    let mut space = nix::cmsg_space!(nix::sys::time::TimeSpec);
    let msg = recvmsg::<SockaddrStorage>(
        sock.as_raw_fd(),
        &mut iov,
        Some(&mut space),
        MsgFlags::empty(),
    )
    .map_err(io::Error::from)?;
    let now = Instant::now();
    let wall = std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .unwrap_or_default();
    *arrived = now;
    if let Ok(cmsgs) = msg.cmsgs() {
        for c in cmsgs {
            if let ControlMessageOwned::ScmTimestampns(ts) = c {
                let k = Duration::new(ts.tv_sec() as u64, ts.tv_nsec() as u32);
                if let Some(ago) = wall.checked_sub(k) {
                    if ago < Duration::from_millis(100) {
                        *arrived = now - ago;
                    }
                }
            }
        }
    }
    let from = msg
        .address
        .and_then(|a: SockaddrStorage| {
            if let Some(v4) = a.as_sockaddr_in() {
                Some(SocketAddr::V4((*v4).into()))
            } else {
                a.as_sockaddr_in6().map(|v6| SocketAddr::V6((*v6).into()))
            }
        })
        .ok_or_else(|| io::Error::other("no source address"))?;
    Ok((msg.bytes, from))
}

const HOLD_LIMIT: Duration = Duration::from_millis(500);
const SPIN: Duration = Duration::from_micros(200);

impl Relay {
    /// Start a relay listening on `listen` (port 0 picks one) in this
    /// process's namespace, forwarding to `upstream`.
    pub fn start(
        listen: SocketAddr,
        upstream: SocketAddr,
        forward: Impairment,
        backward: Impairment,
        seed: u64,
    ) -> Relay {
        let (l, u) = sockets(listen, upstream).expect("relay sockets");
        Self::run(l, u, forward, backward, seed)
    }

    /// Like [`Relay::start`], with the relay's sockets inside `ns` (its
    /// threads stay in the test process).
    pub fn start_in(
        ns: &Netns,
        listen: SocketAddr,
        upstream: SocketAddr,
        forward: Impairment,
        backward: Impairment,
        seed: u64,
    ) -> Relay {
        let path = ns.path();
        let (l, u) = std::thread::spawn(move || -> io::Result<(UdpSocket, UdpSocket)> {
            let f = std::fs::File::open(&path)?;
            nix::sched::setns(&f, nix::sched::CloneFlags::CLONE_NEWNET).map_err(io::Error::from)?;
            sockets(listen, upstream)
        })
        .join()
        .expect("setns thread")
        .expect("relay sockets in namespace");
        Self::run(l, u, forward, backward, seed)
    }

    fn run(
        l: UdpSocket,
        u: UdpSocket,
        forward: Impairment,
        backward: Impairment,
        seed: u64,
    ) -> Relay {
        let addr = l.local_addr().unwrap();
        let stop = Arc::new(AtomicBool::new(false));
        let flog = Arc::new(Mutex::new(Log::default()));
        let blog = Arc::new(Mutex::new(Log::default()));
        let client: Arc<Mutex<Option<SocketAddr>>> = Arc::new(Mutex::new(None));
        let (tx, rx) = mpsc::channel::<(Instant, Dir, Vec<u8>)>();
        let poll = Some(Duration::from_millis(20));
        l.set_read_timeout(poll).unwrap();
        u.set_read_timeout(poll).unwrap();
        let mut threads = Vec::new();

        // Receivers: one per side.
        for (dir, sock, imp, log, seed) in [
            (
                Dir::Forward,
                l.try_clone().unwrap(),
                forward,
                flog.clone(),
                seed,
            ),
            (
                Dir::Backward,
                u.try_clone().unwrap(),
                backward,
                blog.clone(),
                !seed,
            ),
        ] {
            let stop = stop.clone();
            let tx = tx.clone();
            let client = client.clone();
            threads.push(std::thread::spawn(move || {
                let mut side = Side {
                    imp,
                    rng: Rng::new(seed),
                    log,
                    held: None,
                };
                let mut buf = vec![0u8; 65536];
                let _ = setsockopt(&sock, sockopt::ReceiveTimestampns, &true);
                while !stop.load(Ordering::Relaxed) {
                    let mut now = Instant::now();
                    let got = recv_stamped(&sock, &mut buf, &mut now);
                    match got {
                        Ok((n, from)) => {
                            if dir == Dir::Forward {
                                *client.lock().unwrap() = Some(from);
                            }
                            for (at, bytes) in side.apply(buf[..n].to_vec(), now) {
                                let _ = tx.send((at, dir, bytes));
                            }
                        }
                        Err(e)
                            if e.kind() == io::ErrorKind::WouldBlock
                                || e.kind() == io::ErrorKind::TimedOut => {}
                        // ECONNREFUSED from an upstream that is not there yet.
                        Err(_) => {}
                    }
                    if let Some((at, bytes)) = side.expire_held(now, HOLD_LIMIT) {
                        let _ = tx.send((at, dir, bytes));
                    }
                }
            }));
        }
        drop(tx);

        // Scheduler: release each datagram at its due time.
        {
            let stop = stop.clone();
            threads.push(std::thread::spawn(move || {
                let _ = nix::sys::prctl::set_timerslack(1);
                let mut heap: BinaryHeap<Reverse<Due>> = BinaryHeap::new();
                let mut seq = 0u64;
                loop {
                    let now = Instant::now();
                    while heap.peek().is_some_and(|Reverse(d)| d.at <= now) {
                        let Reverse(d) = heap.pop().unwrap();
                        match d.dir {
                            Dir::Forward => {
                                let _ = u.send(&d.bytes);
                            }
                            Dir::Backward => {
                                if let Some(c) = *client.lock().unwrap() {
                                    let _ = l.send_to(&d.bytes, c);
                                }
                            }
                        }
                    }
                    if stop.load(Ordering::Relaxed) && heap.is_empty() {
                        return;
                    }
                    let wait = heap
                        .peek()
                        .map(|Reverse(d)| d.at.saturating_duration_since(Instant::now()))
                        .unwrap_or(Duration::from_millis(20))
                        .min(Duration::from_millis(20));
                    // Sleep until shortly before the next due time, then
                    // spin (yielding) for the last stretch: a timed wait
                    // wakes tens of microseconds late on a busy VM.
                    if wait < SPIN {
                        std::thread::yield_now();
                        if let Ok((at, dir, bytes)) = rx.try_recv() {
                            seq += 1;
                            heap.push(Reverse(Due {
                                at,
                                seq,
                                dir,
                                bytes,
                            }));
                        }
                        continue;
                    }
                    let wait = wait - SPIN;
                    match rx.recv_timeout(wait) {
                        Ok((at, dir, bytes)) => {
                            seq += 1;
                            heap.push(Reverse(Due {
                                at,
                                seq,
                                dir,
                                bytes,
                            }));
                        }
                        Err(mpsc::RecvTimeoutError::Timeout) => {}
                        Err(mpsc::RecvTimeoutError::Disconnected) => {
                            if heap.is_empty() {
                                return;
                            }
                            let left = heap
                                .peek()
                                .map(|Reverse(d)| d.at.saturating_duration_since(Instant::now()))
                                .unwrap_or_default();
                            std::thread::sleep(left);
                        }
                    }
                }
            }));
        }
        Relay {
            addr,
            stop,
            threads,
            forward: flog,
            backward: blog,
        }
    }

    /// The address senders should send to.
    pub fn addr(&self) -> SocketAddr {
        self.addr
    }

    /// What the relay has done so far.
    pub fn record(&self) -> Record {
        Record {
            forward: self.forward.lock().unwrap().clone(),
            backward: self.backward.lock().unwrap().clone(),
        }
    }

    /// Stop the relay (datagrams already due are still sent) and return
    /// its record.
    pub fn stop(mut self) -> Record {
        self.shutdown();
        self.record()
    }

    fn shutdown(&mut self) {
        self.stop.store(true, Ordering::Relaxed);
        for t in self.threads.drain(..) {
            let _ = t.join();
        }
    }
}

impl Drop for Relay {
    fn drop(&mut self) {
        self.shutdown();
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn lo() -> SocketAddr {
        "127.0.0.1:0".parse().unwrap()
    }

    /// An echo server on loopback, stopped when the returned flag is set.
    fn echo() -> (SocketAddr, Arc<AtomicBool>) {
        let s = UdpSocket::bind(lo()).unwrap();
        s.set_read_timeout(Some(Duration::from_millis(20))).unwrap();
        let addr = s.local_addr().unwrap();
        let stop = Arc::new(AtomicBool::new(false));
        let st = stop.clone();
        std::thread::spawn(move || {
            let mut b = [0u8; 2048];
            while !st.load(Ordering::Relaxed) {
                if let Ok((n, from)) = s.recv_from(&mut b) {
                    let _ = s.send_to(&b[..n], from);
                }
            }
        });
        (addr, stop)
    }

    fn collect(c: &UdpSocket, want: usize) -> Vec<Vec<u8>> {
        c.set_read_timeout(Some(Duration::from_millis(300)))
            .unwrap();
        let mut got = Vec::new();
        let mut b = [0u8; 2048];
        while got.len() < want {
            match c.recv(&mut b) {
                Ok(n) => got.push(b[..n].to_vec()),
                Err(_) => break,
            }
        }
        got
    }

    #[test]
    fn delays_each_direction_by_its_setting() {
        let (up, stop) = echo();
        let r = Relay::start(
            lo(),
            up,
            Impairment::delay(Duration::from_millis(10)),
            Impairment::delay(Duration::from_millis(5)),
            1,
        );
        let c = UdpSocket::bind(lo()).unwrap();
        c.connect(r.addr()).unwrap();
        let mut rtts = Vec::new();
        for i in 0..10u8 {
            let t = Instant::now();
            c.send(&[i; 8]).unwrap();
            let got = collect(&c, 1);
            assert_eq!(got, vec![vec![i; 8]]);
            rtts.push(t.elapsed());
        }
        rtts.sort();
        let median = rtts[5];
        assert!(median >= Duration::from_millis(15), "{median:?}");
        // Loose above: a loaded machine wakes threads late (the accuracy
        // tests hold the relay to 0.2 ms on their own machine time).
        assert!(median < Duration::from_millis(25), "{median:?}");
        stop.store(true, Ordering::Relaxed);
        let rec = r.stop();
        assert_eq!(rec.forward.seen(), 10);
        assert_eq!(rec.backward.seen(), 10);
    }

    #[test]
    fn records_exactly_what_it_did() {
        let (up, stop) = echo();
        let f = Impairment {
            loss: 0.1,
            duplicate: 0.1,
            reorder: 0.1,
            corrupt: 0.2,
            corrupt_bits: 3,
            corrupt_range: (4, 16),
            ..Impairment::none()
        };
        let r = Relay::start(lo(), up, f, Impairment::none(), 7);
        let c = UdpSocket::bind(lo()).unwrap();
        c.connect(r.addr()).unwrap();
        let n = 300u32;
        // Read while sending: the socket buffer holds fewer small datagrams
        // than we send.
        let reader = {
            let c = c.try_clone().unwrap();
            std::thread::spawn(move || collect(&c, usize::MAX))
        };
        for i in 0..n {
            let mut p = [0u8; 16];
            p[..4].copy_from_slice(&i.to_be_bytes());
            c.send(&p).unwrap();
            std::thread::sleep(Duration::from_micros(300));
        }
        let got = reader.join().unwrap();
        stop.store(true, Ordering::Relaxed);
        let rec = r.stop();
        let f = &rec.forward;
        assert_eq!(f.seen(), n as usize);
        assert!(f.dropped() > 10 && f.dropped() < 60, "{}", f.dropped());
        assert!(f.duplicated() > 10, "{}", f.duplicated());
        assert!(f.reordered() > 10, "{}", f.reordered());
        // Every datagram that was not dropped came back, duplicates twice.
        assert_eq!(got.len(), n as usize - f.dropped() + f.duplicated());
        // Flipped bits are where the record says, nowhere else.
        let mut flips = 0;
        for g in &got {
            let i = u32::from_be_bytes(g[..4].try_into().unwrap());
            let a = &f.0[i as usize];
            let mut diff = Vec::new();
            for (k, b) in g[4..].iter().enumerate() {
                for bit in 0..8 {
                    if b & (0x80 >> bit) != 0 {
                        diff.push((k + 4) * 8 + bit);
                    }
                }
            }
            assert_eq!(diff, a.flipped, "datagram {i}");
            flips += diff.len();
        }
        assert!(flips > 0);
        // Arrival order shows exactly the recorded swaps: a datagram is late
        // when one with a higher index came before it.
        let mut max = None;
        let mut late = std::collections::BTreeSet::new();
        for g in &got {
            let i = u32::from_be_bytes(g[..4].try_into().unwrap());
            if max.is_some_and(|m| i < m) {
                late.insert(i);
            }
            max = max.max(Some(i));
        }
        let recorded: std::collections::BTreeSet<u32> =
            f.0.iter()
                .filter(|a| a.reordered)
                .map(|a| a.index as u32)
                .collect();
        assert_eq!(late, recorded);
    }
}
