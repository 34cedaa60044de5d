//! One process at a time: a lock file that says who holds it, held by a guard ([`DirLock`]) and
//! removed when the guard is dropped (also when its holder returns an error or stops cleanly on
//! Ctrl-C; a second Ctrl-C or a `kill -9` leaves it behind, stale).
//!
//! The lock is a file created atomically (`create_new`) holding JSON ([`Holder`]): pid, host,
//! command, start time, the pid namespace and a random nonce. Another process that finds it
//! refuses with [`Locked`], which names the holder, unless the lock is **stale**:
//!
//! - its holder ran on this host (same host name and pid namespace) and its pid is no longer
//!   alive (`kill(pid, 0)` fails with `ESRCH`, or the process is a zombie: killed, not yet
//!   reaped); or
//! - it cannot be read as a lock and is older than [`GRACE`] (younger, it may be a lock being
//!   written right now: the taker waits).
//!
//! - its holder ran on another host (or in another pid namespace), where its pid cannot be
//!   checked, and the lock has not been refreshed for [`REMOTE_STALE`]: a live holder touches its
//!   lock every [`HEARTBEAT`] (a thread of the guard), so only a holder that died (a killed pod
//!   retried on another node, a lost node) or has been suspended that long leaves it older.
//!
//! A fresh lock from another host is never assumed stale (the folder may be on a shared file
//! system and its holder alive there): [`Locked`] says so and how to remove it if its holder is
//! dead.
//!
//! A stale lock is taken over under a short-lived second lock (`<lock>.takeover`, so that two
//! takers cannot both win): the lock is read again, and if it is still the same stale lock a new
//! one is renamed over it, then read back to check. The guard then carries a note saying what it
//! took over. A guard removes the lock only while it still holds its own nonce.

use std::fs::OpenOptions;
use std::io::{ErrorKind, Write};
use std::path::{Path, PathBuf};
use std::time::{Duration, Instant, SystemTime};

use anyhow::{Context, Result};
use serde::{Deserialize, Serialize};

use crate::util::sysinfo::{hostname, rfc3339};

/// How old an unreadable lock (or a takeover lock) must be to be stale: a live process writes
/// its lock within milliseconds of creating it.
pub const GRACE: Duration = Duration::from_secs(5);

/// How often a held lock's modification time is refreshed.
pub const HEARTBEAT: Duration = Duration::from_secs(60);

/// How long a lock from another host (whose pid cannot be checked) may go unrefreshed before it
/// is stale: ten heartbeats.
pub const REMOTE_STALE: Duration = Duration::from_secs(600);

/// How long [`DirLock::acquire`] waits for a lock being written, or for another taker, before it
/// gives up.
const PATIENCE: Duration = Duration::from_secs(30);

/// Largest lock file read: more than the longest command line Linux runs (`ARG_MAX`), escaped
/// as JSON; a larger one (or an endless one, a link to `/dev/zero`) is an error, not a hang.
const MAX_LOCK_BYTES: u64 = 16 << 20;

/// Who holds a lock: the lock file's content.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Holder {
    pub pid: u32,
    /// The host name (empty when unknown).
    pub host: String,
    pub command: Vec<String>,
    /// RFC 3339 UTC.
    pub started_at: String,
    /// The holder's pid namespace (`/proc/self/ns/pid` on Linux): a pid is checked only where it
    /// means the same process (containers may share a host name).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub pid_namespace: Option<String>,
    /// Random per lock: a guard removes only the lock it wrote.
    pub nonce: String,
}

impl Holder {
    /// This process, now.
    pub fn me() -> Holder {
        Holder {
            pid: std::process::id(),
            host: hostname().unwrap_or_default(),
            command: std::env::args().collect(),
            started_at: rfc3339(SystemTime::now()),
            pid_namespace: pid_namespace(),
            nonce: format!("{:016x}", rand::random::<u64>()),
        }
    }

    /// Whether the holder ran on this machine, where its pid can be checked.
    fn local(&self) -> bool {
        self.host == hostname().unwrap_or_default() && self.pid_namespace == pid_namespace()
    }

    /// `pid 1234 on node17, started 2024-05-01T02:03:04Z, running `shiftbench run ...``.
    fn describe(&self) -> String {
        let host = if self.host.is_empty() { "an unknown host" } else { &self.host };
        format!("pid {} on {host}, started {}, running `{}`", self.pid, self.started_at, self.command.join(" "))
    }
}

#[cfg(target_os = "linux")]
fn pid_namespace() -> Option<String> {
    std::fs::read_link("/proc/self/ns/pid").ok().map(|p| p.display().to_string())
}

#[cfg(not(target_os = "linux"))]
fn pid_namespace() -> Option<String> {
    None
}

/// Whether a process with this pid runs on this machine (another user's counts; a zombie, one
/// that exited and awaits its parent's `wait`, does not).
#[cfg(unix)]
pub fn pid_alive(pid: u32) -> bool {
    let Ok(p) = i32::try_from(pid) else { return false };
    if p <= 0 {
        return false; // 0 and negatives name process groups, never a lock's holder
    }
    // SAFETY: signal 0 sends nothing; it only checks that the process exists.
    let r = unsafe { libc::kill(p, 0) };
    let exists = r == 0 || std::io::Error::last_os_error().raw_os_error() != Some(libc::ESRCH);
    exists && !zombie(pid)
}

/// Whether the process has exited but not been reaped (`/proc/<pid>/stat` state `Z` or `X`).
#[cfg(unix)]
fn zombie(pid: u32) -> bool {
    let Ok(stat) = std::fs::read_to_string(format!("/proc/{pid}/stat")) else { return false };
    // `pid (comm) state ...`: the name may hold spaces and parentheses, so read after the last ')'.
    let state = stat.rsplit_once(')').and_then(|(_, rest)| rest.split_whitespace().next());
    matches!(state, Some("Z" | "X"))
}

/// Without `kill`, every holder is assumed alive.
#[cfg(not(unix))]
pub fn pid_alive(_pid: u32) -> bool {
    true
}

/// A lock is held by another process that may be alive.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("{}", describe_locked(.path, .holder, *.local))]
pub struct Locked {
    pub path: PathBuf,
    pub holder: Holder,
    /// The holder ran on this machine (and is alive), rather than on another host.
    pub local: bool,
}

/// [`Locked`]'s sentence: who holds the lock, and what to do about it.
fn describe_locked(path: &Path, holder: &Holder, local: bool) -> String {
    let held = format!("{} is held by {}", path.display(), holder.describe());
    if local {
        format!("{held}; it is still running (if it is stuck, stop it: kill {})", holder.pid)
    } else {
        format!(
            "{held}; that is another machine (or container), so whether it still runs cannot be told from here (if it is no longer running, remove the lock: rm {})",
            path.display()
        )
    }
}

/// What a look at an existing lock found.
#[derive(Debug)]
struct Seen {
    bytes: Vec<u8>,
    holder: Option<Holder>,
    age: Duration,
}

/// What to do about an existing lock.
#[derive(Debug, PartialEq)]
enum Verdict {
    Held(Locked),
    /// Unreadable but young: perhaps being written.
    Wait,
    /// Stale, and why.
    Stale(String),
}

fn look(path: &Path) -> std::io::Result<Seen> {
    let bytes = crate::util::safeio::read_bounded(path, MAX_LOCK_BYTES)?;
    let age = std::fs::metadata(path)?.modified().ok().and_then(|m| m.elapsed().ok()).unwrap_or_default();
    let holder = serde_json::from_slice(&bytes).ok();
    Ok(Seen { bytes, holder, age })
}

fn judge(path: &Path, seen: &Seen) -> Verdict {
    match &seen.holder {
        Some(h) if h.local() && !pid_alive(h.pid) => {
            Verdict::Stale(format!("it was left by {}, which is no longer running", h.describe()))
        }
        Some(h) if !h.local() && seen.age >= REMOTE_STALE => Verdict::Stale(format!(
            "it was left by {} on another machine (or container) and has not been refreshed for {} min (a live run refreshes it every {} s)",
            h.describe(),
            seen.age.as_secs() / 60,
            HEARTBEAT.as_secs()
        )),
        Some(h) => Verdict::Held(Locked { path: path.to_path_buf(), holder: h.clone(), local: h.local() }),
        None if seen.age >= GRACE => {
            Verdict::Stale(format!("it is not a lock file shiftbench can read, and {} s old", seen.age.as_secs()))
        }
        None => Verdict::Wait,
    }
}

/// Removes a file when dropped (the takeover lock).
struct RemoveOnDrop(PathBuf);

impl Drop for RemoveOnDrop {
    fn drop(&mut self) {
        let _ = std::fs::remove_file(&self.0);
    }
}

/// A held lock; dropping it removes the lock file (if it is still this guard's).
#[derive(Debug)]
pub struct DirLock {
    path: PathBuf,
    holder: Holder,
    /// Set when a stale lock was taken over: what it was (for a note on stderr).
    pub took_over: Option<String>,
    /// Stops the heartbeat thread when dropped.
    heartbeat: Option<std::sync::mpsc::Sender<()>>,
}

impl DirLock {
    /// The guard of a lock just written, with its heartbeat started.
    fn held(path: &Path, holder: Holder, every: Duration) -> DirLock {
        let (stop, stopped) = std::sync::mpsc::channel::<()>();
        let (p, h) = (path.to_path_buf(), holder.clone());
        let started = std::thread::Builder::new().name("shiftbench-lock-heartbeat".into()).spawn(move || {
            // Until the guard is dropped (its sender with it): touch the lock while it is ours.
            while let Err(std::sync::mpsc::RecvTimeoutError::Timeout) = stopped.recv_timeout(every) {
                if look(&p).is_ok_and(|s| s.holder.as_ref() == Some(&h)) {
                    let _ = OpenOptions::new().write(true).open(&p).and_then(|f| f.set_modified(SystemTime::now()));
                }
            }
        });
        DirLock { path: path.to_path_buf(), holder, took_over: None, heartbeat: started.ok().map(|_| stop) }
    }
}

impl DirLock {
    /// Takes the lock at `path` (creating its folder), taking over a stale one; a lock held by a
    /// process that may be alive is an error that downcasts to [`Locked`].
    pub fn acquire(path: &Path) -> Result<DirLock> {
        Self::acquire_refreshed(path, HEARTBEAT)
    }

    /// [`DirLock::acquire`] with the lock refreshed every `every`.
    fn acquire_refreshed(path: &Path, every: Duration) -> Result<DirLock> {
        if let Some(dir) = path.parent().filter(|d| !d.as_os_str().is_empty()) {
            std::fs::create_dir_all(dir).with_context(|| format!("cannot create {}", dir.display()))?;
        }
        let me = Holder::me();
        let text = serde_json::to_string_pretty(&me)? + "\n";
        let give_up = Instant::now() + PATIENCE;
        loop {
            match OpenOptions::new().write(true).create_new(true).open(path) {
                Ok(mut f) => {
                    if let Err(e) = f.write_all(text.as_bytes()).and_then(|_| f.sync_all()) {
                        let _ = std::fs::remove_file(path);
                        return Err(e).with_context(|| format!("cannot write the lock {}", path.display()));
                    }
                    return Ok(DirLock::held(path, me, every));
                }
                Err(e) if e.kind() == ErrorKind::AlreadyExists => {}
                Err(e) => return Err(e).with_context(|| format!("cannot create the lock {}", path.display())),
            }
            let seen = match look(path) {
                Ok(s) => s,
                Err(e) if e.kind() == ErrorKind::NotFound => continue, // released meanwhile
                Err(e) => return Err(e).with_context(|| format!("cannot read the lock {}", path.display())),
            };
            match judge(path, &seen) {
                Verdict::Held(locked) => return Err(locked.into()),
                Verdict::Stale(why) => {
                    if let Some(mut lock) = take_over(path, &seen, &me, &text, every)? {
                        lock.took_over = Some(why);
                        return Ok(lock);
                    }
                }
                Verdict::Wait => {}
            }
            if Instant::now() > give_up {
                anyhow::bail!(
                    "cannot take the lock {}: it kept changing for {} s (another process is taking it); try again",
                    path.display(),
                    PATIENCE.as_secs()
                );
            }
            std::thread::sleep(Duration::from_millis(25));
        }
    }

    /// The lock file.
    pub fn path(&self) -> &Path {
        &self.path
    }

    /// What the lock file says.
    pub fn holder(&self) -> &Holder {
        &self.holder
    }
}

/// Replaces the stale lock `seen` at `path` with `me` (`text`), under the takeover lock; `None`
/// when another process got there first (the caller looks again).
fn take_over(path: &Path, seen: &Seen, me: &Holder, text: &str, every: Duration) -> Result<Option<DirLock>> {
    let mut name = path.file_name().unwrap_or_default().to_os_string();
    name.push(".takeover");
    let takeover = path.with_file_name(name);
    match OpenOptions::new().write(true).create_new(true).open(&takeover) {
        Ok(_) => {}
        Err(e) if e.kind() == ErrorKind::AlreadyExists => {
            // Another taker is at it (a few file operations); one killed in the middle left it.
            let age = std::fs::metadata(&takeover).ok().and_then(|m| m.modified().ok()).and_then(|m| m.elapsed().ok());
            if age.is_some_and(|a| a >= GRACE) {
                let _ = std::fs::remove_file(&takeover);
            }
            return Ok(None);
        }
        Err(e) => return Err(e).with_context(|| format!("cannot create {}", takeover.display())),
    }
    let _takeover = RemoveOnDrop(takeover);
    // Still the same stale lock? Nobody else can replace it while the takeover lock is held, and
    // its holder is dead: only its removal (by hand) or a new lock after it could change it.
    match look(path) {
        Ok(now) if now.bytes == seen.bytes && matches!(judge(path, &now), Verdict::Stale(_)) => {}
        Ok(_) => return Ok(None),
        Err(e) if e.kind() == ErrorKind::NotFound => return Ok(None),
        Err(e) => return Err(e).with_context(|| format!("cannot read the lock {}", path.display())),
    }
    let mut name = path.file_name().unwrap_or_default().to_os_string();
    name.push(format!(".{}.{}.tmp", me.pid, me.nonce));
    let tmp = path.with_file_name(name);
    let written = (|| -> std::io::Result<()> {
        let mut f = std::fs::File::create(&tmp)?;
        f.write_all(text.as_bytes())?;
        f.sync_all()?;
        std::fs::rename(&tmp, path)
    })();
    if let Err(e) = written {
        let _ = std::fs::remove_file(&tmp);
        return Err(e).with_context(|| format!("cannot replace the stale lock {}", path.display()));
    }
    // Read back: the lock is ours.
    match look(path) {
        Ok(now) if now.holder.as_ref() == Some(me) => Ok(Some(DirLock::held(path, me.clone(), every))),
        _ => Ok(None),
    }
}

impl Drop for DirLock {
    fn drop(&mut self) {
        drop(self.heartbeat.take());
        if look(&self.path).is_ok_and(|s| s.holder.as_ref() == Some(&self.holder)) {
            let _ = std::fs::remove_file(&self.path);
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn write_holder(path: &Path, h: &Holder) {
        std::fs::write(path, serde_json::to_string(h).unwrap()).unwrap();
    }

    /// A pid that is not running: a child that exited and was reaped.
    fn dead_pid() -> u32 {
        let mut c = std::process::Command::new("true").spawn().unwrap();
        let pid = c.id();
        c.wait().unwrap();
        pid
    }

    fn age(path: &Path, by: Duration) {
        let f = std::fs::File::options().write(true).open(path).unwrap();
        f.set_modified(SystemTime::now() - by).unwrap();
    }

    #[test]
    fn taken_held_and_released() {
        let d = tempfile::tempdir().unwrap();
        let p = d.path().join("sub/.x.lock");
        let lock = DirLock::acquire(&p).unwrap();
        assert!(lock.took_over.is_none());
        let on_disk: Holder = serde_json::from_slice(&std::fs::read(&p).unwrap()).unwrap();
        assert_eq!(&on_disk, lock.holder());
        assert_eq!(on_disk.pid, std::process::id());
        assert!(!on_disk.command.is_empty() && on_disk.started_at.ends_with('Z'));
        // Held by a live process (this one): refused, naming it.
        let e = DirLock::acquire(&p).unwrap_err();
        let locked = e.downcast_ref::<Locked>().expect("Locked");
        assert!(locked.local && locked.holder == on_disk);
        let msg = e.to_string();
        assert!(msg.contains(&format!("pid {}", std::process::id())) && msg.contains("kill "), "{msg}");
        drop(lock);
        assert!(!p.exists());
        let again = DirLock::acquire(&p).unwrap();
        assert!(again.took_over.is_none());
    }

    #[test]
    fn a_dead_holder_on_this_host_is_taken_over() {
        let d = tempfile::tempdir().unwrap();
        let p = d.path().join(".x.lock");
        let dead = Holder { pid: dead_pid(), nonce: "dead".into(), ..Holder::me() };
        write_holder(&p, &dead);
        let lock = DirLock::acquire(&p).unwrap();
        let why = lock.took_over.clone().expect("took over");
        assert!(why.contains(&format!("pid {}", dead.pid)) && why.contains("no longer running"), "{why}");
        let on_disk: Holder = serde_json::from_slice(&std::fs::read(&p).unwrap()).unwrap();
        assert_eq!(&on_disk, lock.holder());
        let leftovers: Vec<_> = std::fs::read_dir(d.path()).unwrap().map(|e| e.unwrap().file_name()).collect();
        assert_eq!(leftovers.len(), 1, "no takeover or temporary files left: {leftovers:?}");
        drop(lock);
        assert!(!p.exists());
    }

    #[test]
    fn another_host_is_assumed_dead_only_once_its_heartbeat_stops() {
        let d = tempfile::tempdir().unwrap();
        let p = d.path().join(".x.lock");
        let remote = Holder { pid: dead_pid(), host: "elsewhere-node-9".into(), ..Holder::me() };
        write_holder(&p, &remote);
        age(&p, REMOTE_STALE - Duration::from_secs(30));
        let e = DirLock::acquire(&p).unwrap_err();
        let locked = e.downcast_ref::<Locked>().expect("Locked");
        assert!(!locked.local);
        let msg = e.to_string();
        assert!(msg.contains("elsewhere-node-9") && msg.contains("another machine"), "{msg}");
        assert!(msg.contains(&format!("rm {}", p.display())), "{msg}");
        // Nor is a live-looking pid of another pid namespace (a container sharing the host name).
        let other_ns = Holder { pid: dead_pid(), pid_namespace: Some("pid:[1]".into()), ..Holder::me() };
        write_holder(&p, &other_ns);
        assert!(DirLock::acquire(&p).unwrap_err().downcast_ref::<Locked>().is_some_and(|l| !l.local));
        // Unrefreshed for longer than REMOTE_STALE: its holder is gone (a killed pod retried on
        // another node), and the lock is taken over, saying so.
        write_holder(&p, &remote);
        age(&p, REMOTE_STALE + Duration::from_secs(30));
        let lock = DirLock::acquire(&p).unwrap();
        assert!(
            lock.took_over.as_deref().is_some_and(|w| w.contains("has not been refreshed for 10 min")),
            "{:?}",
            lock.took_over
        );
    }

    #[test]
    fn a_held_lock_is_refreshed() {
        let d = tempfile::tempdir().unwrap();
        let p = d.path().join(".x.lock");
        let lock = DirLock::acquire_refreshed(&p, Duration::from_millis(20)).unwrap();
        age(&p, Duration::from_secs(3600));
        // The heartbeat thread touches it again within a few beats.
        let t0 = Instant::now();
        while look(&p).unwrap().age >= Duration::from_secs(60) {
            assert!(t0.elapsed() < Duration::from_secs(10), "the heartbeat did not refresh the lock");
            std::thread::sleep(Duration::from_millis(10));
        }
        drop(lock);
        assert!(!p.exists());
    }

    #[test]
    fn garbage_is_stale_only_once_old() {
        let d = tempfile::tempdir().unwrap();
        let p = d.path().join(".x.lock");
        std::fs::write(&p, b"{\"pid\": 12").unwrap();
        age(&p, GRACE + Duration::from_secs(1));
        let lock = DirLock::acquire(&p).unwrap();
        assert!(lock.took_over.as_deref().is_some_and(|w| w.contains("not a lock file")), "{:?}", lock.took_over);
        drop(lock);
        // A young empty file (a lock being written) is waited for: here it is never written, so
        // the wait ends when it has aged past the grace period.
        std::fs::write(&p, b"").unwrap();
        age(&p, GRACE - Duration::from_millis(300));
        let start = Instant::now();
        let lock = DirLock::acquire(&p).unwrap();
        assert!(lock.took_over.is_some());
        assert!(start.elapsed() >= Duration::from_millis(200), "{:?}", start.elapsed());
    }

    #[cfg(target_os = "linux")]
    #[test]
    fn a_zombie_is_not_alive() {
        let mut c = std::process::Command::new("true").spawn().unwrap();
        let pid = c.id();
        // Exited, not yet reaped: a zombie until `wait`.
        let start = Instant::now();
        while !zombie(pid) {
            assert!(start.elapsed() < Duration::from_secs(10), "never became a zombie");
            std::thread::sleep(Duration::from_millis(5));
        }
        assert!(!pid_alive(pid));
        assert!(pid_alive(std::process::id()) && !zombie(std::process::id()));
        c.wait().unwrap();
        assert!(!pid_alive(pid));
    }

    #[test]
    fn a_guard_removes_only_its_own_lock() {
        let d = tempfile::tempdir().unwrap();
        let p = d.path().join(".x.lock");
        let lock = DirLock::acquire(&p).unwrap();
        let other = Holder { nonce: "someone-else".into(), ..Holder::me() };
        write_holder(&p, &other);
        drop(lock);
        assert!(p.exists(), "another holder's lock stays");
    }

    #[test]
    fn many_takers_of_one_stale_lock_one_wins() {
        let d = tempfile::tempdir().unwrap();
        let p = d.path().join(".x.lock");
        write_holder(&p, &Holder { pid: dead_pid(), nonce: "dead".into(), ..Holder::me() });
        let barrier = std::sync::Barrier::new(8);
        let outcomes: Vec<Result<DirLock>> = std::thread::scope(|s| {
            let hs: Vec<_> = (0..8)
                .map(|_| {
                    s.spawn(|| {
                        barrier.wait();
                        DirLock::acquire(&p)
                    })
                })
                .collect();
            hs.into_iter().map(|h| h.join().unwrap()).collect()
        });
        // Every thread is this (live) process: one holds the lock, the others are refused.
        assert_eq!(outcomes.iter().filter(|o| o.is_ok()).count(), 1);
        assert!(outcomes.iter().filter_map(|o| o.as_ref().err()).all(|e| e.is::<Locked>()));
    }
}
