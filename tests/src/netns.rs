//! Test hosts in Linux network namespaces.
//!
//! A [`Netns`] is created with `ip netns add`, has its loopback up, and is
//! removed, with every process still running in it, when dropped. Tests join
//! namespaces with veth pairs ([`veth`]) and shape traffic with nftables
//! ([`Netns::nft`]). Everything here needs root; [`require`] tells a test
//! whether it can run.

use std::ffi::OsStr;
use std::process::{Command, Output, Stdio};
use std::sync::atomic::{AtomicU32, Ordering};
use std::sync::OnceLock;

static NEXT: AtomicU32 = AtomicU32::new(0);

/// A network namespace that lives as long as this value.
#[derive(Debug)]
pub struct Netns {
    name: String,
}

fn run_checked(cmd: &mut Command) -> Output {
    let out = cmd
        .stdin(Stdio::null())
        .output()
        .unwrap_or_else(|e| panic!("spawn {cmd:?}: {e}"));
    assert!(
        out.status.success(),
        "{cmd:?} failed ({}): {}{}",
        out.status,
        String::from_utf8_lossy(&out.stdout),
        String::from_utf8_lossy(&out.stderr)
    );
    out
}

impl Netns {
    /// Create a namespace named after `tag`, this process and a counter
    /// (so parallel tests never collide), with `lo` up.
    pub fn new(tag: &str) -> Netns {
        let n = NEXT.fetch_add(1, Ordering::Relaxed);
        let name = format!("stamp-{tag}-{}-{n}", std::process::id());
        run_checked(Command::new("ip").args(["netns", "add", &name]));
        let ns = Netns { name };
        ns.run(&["ip", "link", "set", "lo", "up"]);
        ns
    }

    /// The namespace's name (as `ip netns` knows it).
    pub fn name(&self) -> &str {
        &self.name
    }

    /// The path of the namespace's handle, for `setns(2)`.
    pub fn path(&self) -> String {
        format!("/var/run/netns/{}", self.name)
    }

    /// A command that runs `program` inside the namespace
    /// (`ip netns exec NAME program`; `ip` execs it, so the child's pid is
    /// the program's).
    pub fn cmd(&self, program: impl AsRef<OsStr>) -> Command {
        let mut c = Command::new("ip");
        c.args(["netns", "exec", &self.name]).arg(program);
        c
    }

    /// Run `argv` inside the namespace; panics with its output when it fails.
    pub fn run(&self, argv: &[&str]) -> Output {
        let mut c = self.cmd(argv[0]);
        c.args(&argv[1..]);
        run_checked(&mut c)
    }

    /// Run `argv` inside the namespace and return its output, failed or not.
    pub fn try_run(&self, argv: &[&str]) -> Output {
        let mut c = self.cmd(argv[0]);
        c.args(&argv[1..]);
        c.stdin(Stdio::null())
            .output()
            .unwrap_or_else(|e| panic!("spawn {argv:?}: {e}"))
    }

    /// Load an nftables ruleset (text as `nft -f` reads it) in the namespace.
    pub fn nft(&self, ruleset: &str) {
        use std::io::Write;
        let mut c = self.cmd("nft");
        c.args(["-f", "-"])
            .stdin(Stdio::piped())
            .stdout(Stdio::piped())
            .stderr(Stdio::piped());
        let mut child = c.spawn().expect("spawn nft");
        child
            .stdin
            .take()
            .unwrap()
            .write_all(ruleset.as_bytes())
            .unwrap();
        let out = child.wait_with_output().unwrap();
        assert!(
            out.status.success(),
            "nft -f failed: {}\n{ruleset}",
            String::from_utf8_lossy(&out.stderr)
        );
    }

    /// Turn on IPv4 and IPv6 forwarding (a router namespace).
    pub fn enable_forwarding(&self) {
        self.run(&["sysctl", "-q", "-w", "net.ipv4.ip_forward=1"]);
        self.run(&["sysctl", "-q", "-w", "net.ipv6.conf.all.forwarding=1"]);
    }

    /// Process ids running inside the namespace.
    pub fn pids(&self) -> Vec<u32> {
        let out = Command::new("ip")
            .args(["netns", "pids", &self.name])
            .output()
            .map(|o| String::from_utf8_lossy(&o.stdout).into_owned())
            .unwrap_or_default();
        out.split_whitespace()
            .filter_map(|p| p.parse().ok())
            .collect()
    }
}

impl Drop for Netns {
    fn drop(&mut self) {
        for pid in self.pids() {
            let _ = Command::new("kill")
                .args(["-KILL", &pid.to_string()])
                .status();
        }
        let _ = Command::new("ip")
            .args(["netns", "del", &self.name])
            .stderr(Stdio::null())
            .status();
    }
}

/// Join `a` and `b` with a veth pair: `a_if` in `a` with address `a_cidr`,
/// `b_if` in `b` with `b_cidr` (IPv4 or IPv6 CIDR; IPv6 addresses are added
/// with `nodad` so they are usable at once). Both ends are brought up.
pub fn veth(a: &Netns, a_if: &str, a_cidr: &str, b: &Netns, b_if: &str, b_cidr: &str) {
    run_checked(Command::new("ip").args([
        "link", "add", a_if, "netns", &a.name, "type", "veth", "peer", "name", b_if, "netns",
        &b.name,
    ]));
    for (ns, ifname, cidr) in [(a, a_if, a_cidr), (b, b_if, b_cidr)] {
        add_addr(ns, ifname, cidr);
        ns.run(&["ip", "link", "set", ifname, "up"]);
    }
}

/// Add another address to an interface in `ns`.
pub fn add_addr(ns: &Netns, ifname: &str, cidr: &str) {
    if cidr.contains(':') {
        ns.run(&["ip", "-6", "addr", "add", cidr, "dev", ifname, "nodad"]);
    } else {
        ns.run(&["ip", "addr", "add", cidr, "dev", ifname]);
    }
}

/// Whether namespaces can be made here (root, `ip netns` works).
pub fn available() -> bool {
    static OK: OnceLock<bool> = OnceLock::new();
    *OK.get_or_init(|| {
        if nix::unistd::geteuid().as_raw() != 0 {
            return false;
        }
        let name = format!("stamp-probe-{}", std::process::id());
        let made = Command::new("ip")
            .args(["netns", "add", &name])
            .stderr(Stdio::null())
            .status()
            .map(|s| s.success())
            .unwrap_or(false);
        if made {
            let _ = Command::new("ip").args(["netns", "del", &name]).status();
        }
        made
    })
}

/// Whether `program` is on PATH.
pub fn have(program: &str) -> bool {
    Command::new("sh")
        .args(["-c", &format!("command -v {program}")])
        .stdout(Stdio::null())
        .status()
        .map(|s| s.success())
        .unwrap_or(false)
}

/// For a test that needs namespaces (and the listed programs): true when it
/// can run. When it cannot, it panics if the `CI` variable is set (CI must
/// run it) and otherwise prints why and returns false, so the test returns.
pub fn require(programs: &[&str]) -> bool {
    let mut why = Vec::new();
    if !available() {
        why.push("network namespaces need root and `ip netns`".to_string());
    }
    for p in programs {
        if !have(p) {
            why.push(format!("`{p}` is not installed"));
        }
    }
    if why.is_empty() {
        return true;
    }
    let msg = why.join("; ");
    if std::env::var_os("CI").is_some() {
        panic!("CI must run this test: {msg}");
    }
    eprintln!("skipped: {msg}");
    false
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn veth_joins_two_namespaces_and_drop_removes_them() {
        if !require(&[]) {
            return;
        }
        let a = Netns::new("ta");
        let b = Netns::new("tb");
        veth(&a, "va", "10.9.0.1/24", &b, "vb", "10.9.0.2/24");
        veth(&a, "va6", "fd00:9::1/64", &b, "vb6", "fd00:9::2/64");
        let shown = String::from_utf8(b.run(&["ip", "addr", "show", "vb"]).stdout).unwrap();
        assert!(shown.contains("10.9.0.2/24"), "{shown}");
        // A UDP datagram crosses the pair (relay sockets made inside `a`
        // forward to a socket made inside `b`).
        let target = std::thread::spawn({
            let path = b.path();
            move || {
                let f = std::fs::File::open(path).unwrap();
                nix::sched::setns(&f, nix::sched::CloneFlags::CLONE_NEWNET).unwrap();
                let s = std::net::UdpSocket::bind("10.9.0.2:7001").unwrap();
                s.set_read_timeout(Some(std::time::Duration::from_secs(2)))
                    .unwrap();
                let mut buf = [0u8; 16];
                let (n, from) = s.recv_from(&mut buf).unwrap();
                (buf[..n].to_vec(), from)
            }
        });
        std::thread::sleep(std::time::Duration::from_millis(100));
        let r = crate::relay::Relay::start_in(
            &a,
            "127.0.0.1:0".parse().unwrap(),
            "10.9.0.2:7001".parse().unwrap(),
            crate::relay::Impairment::none(),
            crate::relay::Impairment::none(),
            1,
        );
        let relay_addr = r.addr();
        std::thread::spawn({
            let path = a.path();
            move || {
                let f = std::fs::File::open(path).unwrap();
                nix::sched::setns(&f, nix::sched::CloneFlags::CLONE_NEWNET).unwrap();
                let c = std::net::UdpSocket::bind("127.0.0.1:0").unwrap();
                c.send_to(b"hello", relay_addr).unwrap();
            }
        })
        .join()
        .unwrap();
        let (got, from) = target.join().unwrap();
        assert_eq!(got, b"hello");
        assert_eq!(from.ip().to_string(), "10.9.0.1");
        let name = a.name().to_string();
        drop(r);
        drop(a);
        let list = String::from_utf8(
            Command::new("ip")
                .args(["netns", "list"])
                .output()
                .unwrap()
                .stdout,
        )
        .unwrap();
        assert!(!list.contains(&name), "{list}");
    }
}
