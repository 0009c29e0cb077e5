//! `--user NAME`: give up root once the sockets are bound.
//!
//! Started as root, the reflector binds its socket(s) (port 862 is
//! privileged), then, before any worker reads a packet, sets its
//! supplementary groups to the user's primary group only, then its real,
//! effective and saved gid, then its real, effective and saved uid
//! (`setgroups`, `setresgid`, `setresuid`; glibc applies them to every
//! thread). Changing all three uids away from 0 clears every capability.
//! It then checks that the change cannot be undone: `setuid(0)` and
//! `setgid(0)` must fail and no id, group or effective capability of root
//! may be left. Any failure stops the process before it serves.
//!
//! Not started as root, `--user` naming the current user is accepted (a
//! service manager already dropped privileges); another user is an error.

use nix::unistd::{Gid, Uid, User};

/// What the process runs as after [`drop_to`].
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Dropped {
    /// The user's name.
    pub user: String,
    /// Its uid.
    pub uid: u32,
    /// Its primary gid.
    pub gid: u32,
    /// False when the process was not root and already ran as the user.
    pub changed: bool,
}

/// Switch to `name`'s uid, gid and groups (see the module documentation).
pub fn drop_to(name: &str) -> Result<Dropped, String> {
    let user = User::from_name(name)
        .map_err(|e| format!("--user {name}: cannot look the user up: {e}"))?
        .ok_or_else(|| format!("--user {name}: no such user"))?;
    let (uid, gid) = (user.uid, user.gid);
    let mut out = Dropped {
        user: name.to_string(),
        uid: uid.as_raw(),
        gid: gid.as_raw(),
        changed: false,
    };
    if !Uid::effective().is_root() {
        if Uid::current() == uid && Uid::effective() == uid {
            return Ok(out);
        }
        return Err(format!(
            "--user {name}: only root can switch users (running as uid {})",
            Uid::effective()
        ));
    }
    if uid.is_root() {
        return Err(format!(
            "--user {name}: that user is root; name an unprivileged user"
        ));
    }
    nix::unistd::setgroups(&[gid]).map_err(|e| format!("--user {name}: setgroups: {e}"))?;
    nix::unistd::setresgid(gid, gid, gid).map_err(|e| format!("--user {name}: setresgid: {e}"))?;
    nix::unistd::setresuid(uid, uid, uid).map_err(|e| format!("--user {name}: setresuid: {e}"))?;
    verify(name, uid, gid)?;
    out.changed = true;
    Ok(out)
}

/// Check that root is gone for good.
fn verify(name: &str, uid: Uid, gid: Gid) -> Result<(), String> {
    let fail = |what: &str| Err(format!("--user {name}: privileges not dropped: {what}"));
    let r = nix::unistd::getresuid().map_err(|e| format!("getresuid: {e}"))?;
    if [r.real, r.effective, r.saved] != [uid; 3] {
        return fail("a uid is not the user's");
    }
    let g = nix::unistd::getresgid().map_err(|e| format!("getresgid: {e}"))?;
    if [g.real, g.effective, g.saved] != [gid; 3] {
        return fail("a gid is not the user's");
    }
    let groups = nix::unistd::getgroups().map_err(|e| format!("getgroups: {e}"))?;
    if groups.iter().any(|x| *x != gid) {
        return fail("a supplementary group is left");
    }
    if nix::unistd::setuid(Uid::from_raw(0)).is_ok()
        || nix::unistd::seteuid(Uid::from_raw(0)).is_ok()
    {
        return fail("setuid(0) succeeded");
    }
    if nix::unistd::setgid(Gid::from_raw(0)).is_ok() {
        return fail("setgid(0) succeeded");
    }
    if let Ok(status) = std::fs::read_to_string("/proc/self/status") {
        for cap in ["CapEff:", "CapPrm:"] {
            let left = status
                .lines()
                .find_map(|l| l.strip_prefix(cap))
                .and_then(|v| u64::from_str_radix(v.trim(), 16).ok());
            if left.is_some_and(|bits| bits != 0) {
                return fail(&format!("{cap} not empty"));
            }
        }
    }
    Ok(())
}
