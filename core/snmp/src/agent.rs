//! The sub-agent session: connect to the master's Unix socket, Open,
//! Register our subtrees, answer Get / GetNext / GetBulk from the
//! [`Provider`]'s view, Ping the master while idle, and start over with
//! backoff whenever the master closes the session, goes away or restarts.
//!
//! It runs on its own thread with its own current-thread runtime
//! ([`spawn`]): a slow master, a large walk or a reconnect loop never
//! touches the threads that move packets.

use std::path::PathBuf;
use std::time::{Duration, Instant};

use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::UnixStream;

use crate::mib::View;
use crate::pdu::{self, close_reason, error, Header, Oid, Request, Value, HEADER_LEN};

/// Where the values come from. Called on the sub-agent's thread, at most
/// once per [`AgentConfig::cache`] while requests come in.
pub trait Provider: Send + 'static {
    /// Every instance of the subtrees we registered (any order).
    fn snapshot(&mut self) -> Vec<(Oid, Value)>;
}

impl<F: FnMut() -> Vec<(Oid, Value)> + Send + 'static> Provider for F {
    fn snapshot(&mut self) -> Vec<(Oid, Value)> {
        self()
    }
}

/// How the sub-agent talks to its master.
#[derive(Debug, Clone)]
pub struct AgentConfig {
    /// The master's AgentX Unix socket (net-snmp: `/var/agentx/master`).
    pub socket: PathBuf,
    /// Our identity (agentx-Open `id`).
    pub id: Oid,
    /// Our description (agentx-Open `descr`).
    pub description: String,
    /// Subtrees to register.
    pub subtrees: Vec<Oid>,
    /// Registration priority (lower wins; 127 is the default).
    pub priority: u8,
    /// Seconds the master waits for our answers (agentx-Open `timeout`).
    pub timeout_s: u8,
    /// Ping the master after this much silence; no answer within
    /// `response_timeout` and the session is dropped and started again.
    pub ping_interval: Duration,
    /// How long the master has to answer Open, Register and Ping.
    pub response_timeout: Duration,
    /// First retry delay after a failure; doubles up to `backoff_max`.
    pub backoff_min: Duration,
    /// Longest retry delay.
    pub backoff_max: Duration,
    /// A snapshot answers requests for this long.
    pub cache: Duration,
    /// Most varbinds in one GetBulk answer.
    pub max_bulk: usize,
}

impl AgentConfig {
    /// Defaults for a socket, identity and subtrees.
    pub fn new(socket: PathBuf, id: Oid, description: &str, subtrees: Vec<Oid>) -> AgentConfig {
        AgentConfig {
            socket,
            id,
            description: description.to_string(),
            subtrees,
            priority: 127,
            timeout_s: 5,
            ping_interval: Duration::from_secs(5),
            response_timeout: Duration::from_secs(5),
            backoff_min: Duration::from_millis(200),
            backoff_max: Duration::from_secs(5),
            cache: Duration::from_millis(500),
            max_bulk: 256,
        }
    }
}

/// Start the sub-agent on its own thread; it runs until the process ends.
pub fn spawn<P: Provider>(
    config: AgentConfig,
    provider: P,
) -> std::io::Result<std::thread::JoinHandle<()>> {
    std::thread::Builder::new()
        .name("snmp-agentx".into())
        .spawn(move || {
            let rt = match tokio::runtime::Builder::new_current_thread()
                .enable_all()
                .build()
            {
                Ok(rt) => rt,
                Err(e) => {
                    tracing::error!(error = %e, "AgentX sub-agent: cannot start its runtime");
                    return;
                }
            };
            rt.block_on(run(config, provider));
        })
}

/// What ended a session.
#[derive(Debug)]
enum End {
    /// Never opened (no master, refused, ...).
    NotOpened(String),
    /// Was open, then lost.
    Lost(String),
}

/// Connect, serve, reconnect with backoff, forever.
pub async fn run<P: Provider>(config: AgentConfig, mut provider: P) {
    let started = Instant::now();
    let mut delay = config.backoff_min;
    let mut quiet = false;
    let mut cache = Cache::default();
    loop {
        let end = match UnixStream::connect(&config.socket).await {
            Ok(stream) => session(&config, stream, &mut provider, &mut cache, started).await,
            Err(e) => End::NotOpened(format!(
                "cannot connect to {}: {e}",
                config.socket.display()
            )),
        };
        match end {
            End::Lost(why) => {
                tracing::warn!(reason = %why, "AgentX session lost; reconnecting");
                delay = config.backoff_min;
                quiet = false;
            }
            End::NotOpened(why) => {
                // Said once, then quietly retried until a session opens.
                if quiet {
                    tracing::debug!(reason = %why, retry_in = ?delay, "AgentX master unavailable");
                } else {
                    tracing::warn!(reason = %why, "AgentX master unavailable; retrying with backoff");
                    quiet = true;
                }
            }
        }
        tokio::time::sleep(delay).await;
        delay = (delay * 2).min(config.backoff_max);
    }
}

/// The latest snapshot and when it was taken.
#[derive(Default)]
struct Cache {
    view: View,
    taken: Option<Instant>,
}

impl Cache {
    fn get<P: Provider>(&mut self, provider: &mut P, ttl: Duration) -> &View {
        if self.taken.is_none_or(|t| t.elapsed() >= ttl) {
            self.view = View::new(provider.snapshot());
            self.taken = Some(Instant::now());
        }
        &self.view
    }
}

/// Bytes read but not yet framed, and the framing.
struct Conn {
    stream: UnixStream,
    buf: Vec<u8>,
}

impl Conn {
    /// A complete PDU at the front of the buffer, if there is one.
    fn frame(&mut self) -> Result<Option<(Header, Vec<u8>)>, String> {
        if self.buf.len() < HEADER_LEN {
            return Ok(None);
        }
        let hb: [u8; HEADER_LEN] = self.buf[..HEADER_LEN].try_into().expect("20 octets");
        let h = Header::decode(&hb).map_err(|e| e.to_string())?;
        let len = h.payload_len as usize;
        if len > pdu::MAX_PAYLOAD {
            return Err(format!("PDU of {len} octets"));
        }
        if self.buf.len() < HEADER_LEN + len {
            return Ok(None);
        }
        let payload = self.buf[HEADER_LEN..HEADER_LEN + len].to_vec();
        self.buf.drain(..HEADER_LEN + len);
        Ok(Some((h, payload)))
    }

    /// Read more (cancel-safe: a partial read stays in the buffer).
    async fn fill(&mut self) -> Result<(), String> {
        let mut tmp = [0u8; 4096];
        match self.stream.read(&mut tmp).await {
            Ok(0) => Err("the master closed the connection".into()),
            Ok(n) => {
                self.buf.extend_from_slice(&tmp[..n]);
                Ok(())
            }
            Err(e) => Err(format!("read: {e}")),
        }
    }

    async fn send(&mut self, pdu: &[u8]) -> Result<(), String> {
        self.stream
            .write_all(pdu)
            .await
            .map_err(|e| format!("write: {e}"))
    }

    /// Wait for the Response to our packet `id`, answering nothing else
    /// meanwhile (the master sends no requests before we registered).
    async fn response(&mut self, id: u32, limit: Duration) -> Result<(Header, u16), String> {
        let deadline = tokio::time::Instant::now() + limit;
        loop {
            while let Some((h, p)) = self.frame()? {
                if h.packet_id != id {
                    continue;
                }
                if let Ok(Request::Response { error, .. }) = pdu::decode_request(&h, &p) {
                    return Ok((h, error));
                }
            }
            tokio::time::timeout_at(deadline, self.fill())
                .await
                .map_err(|_| "the master did not answer".to_string())??;
        }
    }
}

async fn session<P: Provider>(
    config: &AgentConfig,
    stream: UnixStream,
    provider: &mut P,
    cache: &mut Cache,
    started: Instant,
) -> End {
    let mut conn = Conn {
        stream,
        buf: Vec::with_capacity(8192),
    };
    let mut packet_id = 1u32;
    // Open.
    let open = pdu::open(packet_id, config.timeout_s, &config.id, &config.description);
    if let Err(e) = conn.send(&open).await {
        return End::NotOpened(e);
    }
    let session_id = match conn.response(packet_id, config.response_timeout).await {
        Ok((h, error::NO_ERROR)) => h.session_id,
        Ok((_, e)) => return End::NotOpened(format!("Open refused (error {e})")),
        Err(e) => return End::NotOpened(e),
    };
    // Register every subtree.
    for subtree in &config.subtrees {
        packet_id += 1;
        let reg = pdu::register(session_id, packet_id, subtree, config.priority);
        let r = match conn.send(&reg).await {
            Ok(()) => conn.response(packet_id, config.response_timeout).await,
            Err(e) => Err(e),
        };
        match r {
            Ok((_, error::NO_ERROR)) => {}
            Ok((_, e)) => {
                let why = if e == error::DUPLICATE_REGISTRATION {
                    "another sub-agent already serves it".to_string()
                } else {
                    format!("error {e}")
                };
                let _ = conn
                    .send(&pdu::close(session_id, packet_id + 1, close_reason::OTHER))
                    .await;
                return End::NotOpened(format!("Register {} refused: {why}", dotted(subtree)));
            }
            Err(e) => return End::NotOpened(e),
        }
    }
    tracing::info!(
        socket = %config.socket.display(),
        session = session_id,
        subtrees = ?config.subtrees.iter().map(|s| dotted(s)).collect::<Vec<_>>(),
        "AgentX sub-agent registered"
    );

    // Serve until the session ends.
    let mut last_heard = tokio::time::Instant::now();
    let mut ping_sent: Option<(u32, tokio::time::Instant)> = None;
    loop {
        loop {
            let frame = match conn.frame() {
                Ok(Some(f)) => f,
                Ok(None) => break,
                Err(e) => {
                    let _ = conn
                        .send(&pdu::close(session_id, 0, close_reason::PARSE_ERROR))
                        .await;
                    return End::Lost(e);
                }
            };
            last_heard = tokio::time::Instant::now();
            let (h, payload) = frame;
            let uptime = (started.elapsed().as_millis() / 10) as u32;
            let reply = match pdu::decode_request(&h, &payload) {
                Err(_) => Some(pdu::response(&h, uptime, error::PARSE_ERROR, 0, &[])),
                Ok(req) => match req {
                    Request::Get(ranges) => {
                        let view = cache.get(provider, config.cache);
                        let vbs: Vec<_> = ranges.iter().map(|r| view.get(&r.start)).collect();
                        Some(pdu::response(&h, uptime, error::NO_ERROR, 0, &vbs))
                    }
                    Request::GetNext(ranges) => {
                        let view = cache.get(provider, config.cache);
                        let vbs: Vec<_> = ranges.iter().map(|r| view.next(r)).collect();
                        Some(pdu::response(&h, uptime, error::NO_ERROR, 0, &vbs))
                    }
                    Request::GetBulk {
                        non_repeaters,
                        max_repetitions,
                        ranges,
                    } => {
                        let view = cache.get(provider, config.cache);
                        let vbs =
                            view.bulk(non_repeaters, max_repetitions, &ranges, config.max_bulk);
                        Some(pdu::response(&h, uptime, error::NO_ERROR, 0, &vbs))
                    }
                    // Everything here is read-only.
                    Request::TestSet => {
                        Some(pdu::response(&h, uptime, error::NOT_WRITABLE, 1, &[]))
                    }
                    Request::CommitOrUndo => {
                        Some(pdu::response(&h, uptime, error::NO_ERROR, 0, &[]))
                    }
                    Request::CleanupSet => None,
                    Request::Close(reason) => {
                        return End::Lost(format!(
                            "the master closed the session (reason {reason})"
                        ));
                    }
                    Request::Response { error, .. } => {
                        if ping_sent.is_some_and(|(id, _)| id == h.packet_id) {
                            ping_sent = None;
                            if error == error::NOT_OPEN {
                                return End::Lost("the master no longer knows our session".into());
                            }
                        }
                        None
                    }
                    Request::Other => {
                        Some(pdu::response(&h, uptime, error::PROCESSING_ERROR, 0, &[]))
                    }
                },
            };
            if let Some(r) = reply {
                if let Err(e) = conn.send(&r).await {
                    return End::Lost(e);
                }
            }
        }
        // Wait for more, or ping after a quiet spell.
        let wake = match ping_sent {
            Some((_, at)) => at + config.response_timeout,
            None => last_heard + config.ping_interval,
        };
        tokio::select! {
            r = conn.fill() => {
                if let Err(e) = r {
                    return End::Lost(e);
                }
            }
            _ = tokio::time::sleep_until(wake) => {
                if ping_sent.is_some() {
                    return End::Lost("the master did not answer a Ping".into());
                }
                packet_id = packet_id.wrapping_add(1);
                if let Err(e) = conn.send(&pdu::ping(session_id, packet_id)).await {
                    return End::Lost(e);
                }
                ping_sent = Some((packet_id, tokio::time::Instant::now()));
            }
        }
    }
}

/// An OID as dotted decimal.
pub fn dotted(oid: &[u32]) -> String {
    oid.iter()
        .map(|s| s.to_string())
        .collect::<Vec<_>>()
        .join(".")
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::pdu::{PduType, Writer};
    use std::sync::atomic::{AtomicU64, Ordering};
    use std::sync::Arc;
    use tokio::net::UnixListener;

    const ROOT: [u32; 7] = [1, 3, 6, 1, 4, 1, 32473];

    /// Read one PDU from the sub-agent.
    async fn read_pdu(s: &mut UnixStream) -> (Header, Vec<u8>) {
        let mut hb = [0u8; HEADER_LEN];
        s.read_exact(&mut hb).await.unwrap();
        let h = Header::decode(&hb).unwrap();
        let mut p = vec![0u8; h.payload_len as usize];
        s.read_exact(&mut p).await.unwrap();
        (h, p)
    }

    /// Answer the Open and the Register as a master would.
    async fn accept_session(l: &UnixListener, session_id: u32) -> UnixStream {
        let (mut s, _) = l.accept().await.unwrap();
        let (h, _) = read_pdu(&mut s).await;
        assert_eq!(h.pdu_type(), Some(PduType::Open));
        let mut reply = h;
        reply.session_id = session_id;
        s.write_all(&pdu::response(&reply, 0, 0, 0, &[]))
            .await
            .unwrap();
        let (h, p) = read_pdu(&mut s).await;
        assert_eq!(h.pdu_type(), Some(PduType::Register));
        assert_eq!(h.session_id, session_id);
        // priority 127, then the subtree with prefix 4.
        assert_eq!(&p[..4], &[0, 127, 0, 0]);
        assert_eq!(&p[4..8], &[2, 4, 0, 0]);
        s.write_all(&pdu::response(&h, 0, 0, 0, &[])).await.unwrap();
        s
    }

    /// Decode a Response's varbinds as (type, name, u64 value).
    fn varbinds(p: &[u8]) -> Vec<(u16, Vec<u32>, u64)> {
        let mut out = Vec::new();
        let mut i = 8;
        let u32_at = |i: usize| u32::from_be_bytes(p[i..i + 4].try_into().unwrap());
        while i < p.len() {
            let ty = u16::from_be_bytes([p[i], p[i + 1]]);
            let n = p[i + 4] as usize;
            let prefix = p[i + 5];
            let mut name = if prefix != 0 {
                vec![1, 3, 6, 1, u32::from(prefix)]
            } else {
                vec![]
            };
            for k in 0..n {
                name.push(u32_at(i + 8 + 4 * k));
            }
            i += 8 + 4 * n;
            let v = match ty {
                70 => {
                    let v = (u64::from(u32_at(i)) << 32) | u64::from(u32_at(i + 4));
                    i += 8;
                    v
                }
                65..=67 | 2 => {
                    i += 4;
                    u64::from(u32_at(i - 4))
                }
                _ => 0,
            };
            out.push((ty, name, v));
        }
        out
    }

    fn get_next(session_id: u32, packet_id: u32, start: &[u32]) -> Vec<u8> {
        let mut w = Writer::new(PduType::GetNext, session_id, 5, packet_id);
        w.oid(start, false).oid(&[], false);
        w.finish()
    }

    #[tokio::test]
    async fn serves_and_reconnects() {
        let dir = std::env::temp_dir().join(format!("stamp-snmp-test-{}", std::process::id()));
        let _ = std::fs::remove_dir_all(&dir);
        std::fs::create_dir_all(&dir).unwrap();
        let path = dir.join("master");
        let listener = UnixListener::bind(&path).unwrap();

        let counter = Arc::new(AtomicU64::new(41));
        let c = counter.clone();
        let provider = move || {
            let mut a = ROOT.to_vec();
            a.extend([1, 1, 0]);
            let mut b = ROOT.to_vec();
            b.extend([1, 2, 0]);
            vec![
                (b, Value::Gauge32(7)),
                (a, Value::Counter64(c.load(Ordering::Relaxed))),
            ]
        };
        let mut config = AgentConfig::new(path.clone(), ROOT.to_vec(), "test", vec![ROOT.to_vec()]);
        config.backoff_min = Duration::from_millis(10);
        config.cache = Duration::ZERO;
        config.ping_interval = Duration::from_millis(200);
        config.response_timeout = Duration::from_millis(300);
        let agent = tokio::spawn(run(config, provider));

        let mut s = accept_session(&listener, 77).await;
        s.write_all(&get_next(77, 100, &ROOT)).await.unwrap();
        let (h, p) = read_pdu(&mut s).await;
        assert_eq!(h.pdu_type(), Some(PduType::Response));
        assert_eq!((h.session_id, h.transaction_id, h.packet_id), (77, 5, 100));
        let vbs = varbinds(&p);
        let mut want = ROOT.to_vec();
        want.extend([1, 1, 0]);
        assert_eq!(vbs, vec![(70, want.clone(), 41)]);

        // A Set is refused as notWritable on the first varbind.
        let b = Writer::new(PduType::TestSet, 77, 6, 101).finish();
        s.write_all(&b).await.unwrap();
        let (h, p) = read_pdu(&mut s).await;
        assert_eq!(h.packet_id, 101);
        assert_eq!(&p[4..8], &[0, 17, 0, 1]);

        // Idle: the sub-agent pings; answer it.
        let (h, _) = read_pdu(&mut s).await;
        assert_eq!(h.pdu_type(), Some(PduType::Ping));
        assert_eq!(h.session_id, 77);
        s.write_all(&pdu::response(&h, 0, 0, 0, &[])).await.unwrap();

        // The master goes away; the sub-agent comes back on its own, and
        // serves the new value.
        drop(s);
        counter.store(42, Ordering::Relaxed);
        let mut s = tokio::time::timeout(Duration::from_secs(5), accept_session(&listener, 78))
            .await
            .expect("reconnected");
        let mut w = Writer::new(PduType::GetBulk, 78, 1, 200);
        w.u16(0).u16(5).oid(&ROOT, false).oid(&[], false);
        s.write_all(&w.finish()).await.unwrap();
        let (_, p) = read_pdu(&mut s).await;
        let vbs = varbinds(&p);
        assert_eq!(vbs.len(), 3, "{vbs:?}");
        assert_eq!(vbs[0], (70, want, 42));
        assert_eq!(vbs[1].0, 66);
        assert_eq!(vbs[2].0, 130);

        // A ping left unanswered ends the session; the sub-agent opens a
        // new one.
        let (h, _) = read_pdu(&mut s).await;
        assert_eq!(h.pdu_type(), Some(PduType::Ping));
        let _s3 = tokio::time::timeout(Duration::from_secs(10), accept_session(&listener, 79))
            .await
            .expect("reconnected after an unanswered ping");

        agent.abort();
        let _ = std::fs::remove_dir_all(&dir);
    }

    #[tokio::test]
    async fn duplicate_registration_is_retried() {
        let dir = std::env::temp_dir().join(format!("stamp-snmp-dup-{}", std::process::id()));
        let _ = std::fs::remove_dir_all(&dir);
        std::fs::create_dir_all(&dir).unwrap();
        let path = dir.join("master");
        let listener = UnixListener::bind(&path).unwrap();
        let mut config = AgentConfig::new(path, ROOT.to_vec(), "dup", vec![ROOT.to_vec()]);
        config.backoff_min = Duration::from_millis(10);
        let agent = tokio::spawn(run(config, Vec::new));

        let (mut s, _) = listener.accept().await.unwrap();
        let (h, _) = read_pdu(&mut s).await;
        s.write_all(&pdu::response(&h, 0, 0, 0, &[])).await.unwrap();
        let (h, _) = read_pdu(&mut s).await;
        s.write_all(&pdu::response(&h, 0, error::DUPLICATE_REGISTRATION, 0, &[]))
            .await
            .unwrap();
        // It closes that session and tries again later.
        let (h, _) = read_pdu(&mut s).await;
        assert_eq!(h.pdu_type(), Some(PduType::Close));
        let _s = tokio::time::timeout(Duration::from_secs(5), accept_session(&listener, 2))
            .await
            .expect("tried again");
        agent.abort();
        let _ = std::fs::remove_dir_all(&dir);
    }
}
