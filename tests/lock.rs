//! One run per output folder at a time (issue 13): a second `shiftbench run` on the same `--out`
//! is refused naming the first (its pid), a lock left by a run killed with `kill -9` is taken over,
//! a lock from another host is never assumed dead, Ctrl-C releases the lock, and the shards of one
//! run share a folder while two runs of the same shard do not; a lock file that never ends is an
//! error.

mod common;

use std::path::{Path, PathBuf};
use std::process::{Child, Command, Output, Stdio};
use std::time::{Duration, Instant};

use shiftbench::results::paths::lock_path;
use shiftbench::results::predlog::{read_log, read_log_lenient};
use shiftbench::results::shard::Shard;
use shiftbench::util::lock::Holder;
use shiftbench::RunResult;

/// A synthetic suite of 40 images and the misbehaving fixture as a slow model (`sleep_ms` per
/// batch; with batches of 2, about 20 batches for the suite).
struct Setup {
    dir: tempfile::TempDir,
    suite: PathBuf,
    model: PathBuf,
}

fn setup(sleep_ms: u64) -> Setup {
    let dir = tempfile::tempdir().unwrap();
    let suite = common::synthetic_suite(dir.path(), "shapes", 4);
    let model = dir.path().join("slow.yaml");
    let lib = common::plugin_lib("shiftbench_misbehave");
    std::fs::write(
        &model,
        format!(
            "plugin: {}\nname: slow\npreprocess: {{resize: 32, crop: 32}}\noptions: {{behave: slow, sleep_ms: {sleep_ms}}}\n",
            lib.display()
        ),
    )
    .unwrap();
    Setup { dir, suite, model }
}

impl Setup {
    fn out(&self) -> PathBuf {
        self.dir.path().join("out")
    }

    fn cmd(&self, shard: Option<&str>) -> Command {
        let mut c = Command::new(common::shiftbench_bin());
        c.args(["run", "--batch", "2", "--threads", "1", "--suite"])
            .arg(&self.suite)
            .arg("--model")
            .arg(&self.model)
            .arg("--out")
            .arg(self.out());
        if let Some(s) = shard {
            c.args(["--shard", s]);
        }
        c
    }

    fn spawn(&self, shard: Option<&str>) -> Child {
        self.cmd(shard).stdout(Stdio::piped()).stderr(Stdio::piped()).spawn().unwrap()
    }

    fn log(&self, shard: Option<Shard>) -> PathBuf {
        shiftbench::shard_log_path(&self.out(), "slow", "shapes", shard)
    }
}

fn text(o: &Output) -> String {
    format!(
        "status {:?}\n--- stdout\n{}\n--- stderr\n{}",
        o.status,
        String::from_utf8_lossy(&o.stdout),
        String::from_utf8_lossy(&o.stderr)
    )
}

/// Waits (up to two minutes) until `cond` holds while `child` still runs.
fn wait_until(child: &mut Child, what: &str, cond: impl Fn() -> bool) {
    let start = Instant::now();
    while !cond() {
        assert!(start.elapsed() < Duration::from_secs(120), "timed out waiting until {what}");
        assert!(child.try_wait().unwrap().is_none(), "the run ended before {what}");
        std::thread::sleep(Duration::from_millis(20));
    }
}

fn records(log: &Path) -> usize {
    read_log_lenient(log).map(|(_, r, _)| r.len()).unwrap_or(0)
}

fn holder(lock: &Path) -> Holder {
    serde_json::from_slice(&std::fs::read(lock).unwrap()).unwrap()
}

#[test]
fn a_second_run_on_the_same_folder_is_refused_naming_the_first() {
    let s = setup(200);
    let lock = lock_path(&s.out(), None);
    let mut first = s.spawn(None);
    wait_until(&mut first, "the first run wrote a batch", || records(&s.log(None)) >= 2);
    let h = holder(&lock);
    assert_eq!(h.pid, first.id());
    assert!(h.command.iter().any(|a| a == "run") && h.started_at.ends_with('Z'), "{h:?}");

    let second = s.cmd(None).output().unwrap();
    let err = String::from_utf8_lossy(&second.stderr);
    assert_eq!(second.status.code(), Some(2), "{}", text(&second));
    assert!(err.contains("is being written by another shiftbench run"), "{err}");
    assert!(err.contains(&format!("pid {}", first.id())), "{err}");
    assert!(err.contains(&h.started_at) && err.contains(&format!("kill {}", first.id())), "{err}");
    assert!(err.contains(&lock.display().to_string()), "{err}");
    assert!(first.try_wait().unwrap().is_none(), "the refused run left the first alone");

    let o = first.wait_with_output().unwrap();
    assert!(o.status.success(), "{}", text(&o));
    let (_, all) = read_log(&s.log(None)).unwrap();
    assert_eq!(all.len(), 40, "one writer: every sample once");
    assert!(!lock.exists(), "the lock is removed when the run ends");
    // Now the folder is free: the same command runs (and resumes a finished log).
    let o = s.cmd(None).output().unwrap();
    assert!(o.status.success(), "{}", text(&o));
    assert!(!lock.exists());
}

#[test]
fn a_lock_left_by_a_killed_run_is_taken_over() {
    let s = setup(150);
    let lock = lock_path(&s.out(), None);
    let mut victim = s.spawn(None);
    wait_until(&mut victim, "the run wrote a batch", || records(&s.log(None)) >= 2);
    let pid = victim.id();
    victim.kill().unwrap(); // SIGKILL: no clean-up
    victim.wait().unwrap(); // reaped, so the pid is gone
    assert!(lock.exists(), "kill -9 leaves the lock behind");
    assert_eq!(holder(&lock).pid, pid);

    let o = s.cmd(None).output().unwrap();
    let err = String::from_utf8_lossy(&o.stderr);
    assert!(o.status.success(), "{}", text(&o));
    assert!(err.contains("note: taking over the lock") && err.contains(&format!("pid {pid} ")), "{err}");
    assert!(err.contains("no longer running"), "{err}");
    let (_, all) = read_log(&s.log(None)).unwrap();
    assert_eq!(all.len(), 40);
    assert!(!lock.exists());
    let r: RunResult = serde_json::from_slice(&std::fs::read(s.out().join("result.json")).unwrap()).unwrap();
    assert_eq!(r.results[0].totals.evaluated, 40);
}

#[test]
fn a_lock_from_another_host_is_refused_with_how_to_remove_it() {
    let s = setup(0);
    let lock = lock_path(&s.out(), None);
    std::fs::create_dir_all(s.out()).unwrap();
    let remote = Holder { pid: 4242, host: "other-node-7".into(), ..Holder::me() };
    std::fs::write(&lock, serde_json::to_vec(&remote).unwrap()).unwrap();
    let o = s.cmd(None).output().unwrap();
    let err = String::from_utf8_lossy(&o.stderr);
    assert_eq!(o.status.code(), Some(2), "{}", text(&o));
    assert!(err.contains("pid 4242 on other-node-7") && err.contains("another machine"), "{err}");
    assert!(err.contains(&format!("rm {}", lock.display())), "{err}");
    assert!(!s.log(None).exists(), "refused before any log was opened");
    // Removed as the message says, the run goes.
    std::fs::remove_file(&lock).unwrap();
    let o = s.cmd(None).output().unwrap();
    assert!(o.status.success(), "{}", text(&o));
}

/// A lock file that never ends (a link to `/dev/zero`) is refused in one sentence, not read until
/// memory runs out.
#[test]
#[cfg(unix)]
fn an_endless_lock_file_is_an_error_not_a_hang() {
    let s = setup(0);
    let lock = lock_path(&s.out(), None);
    std::fs::create_dir_all(s.out()).unwrap();
    std::os::unix::fs::symlink("/dev/zero", &lock).unwrap();
    let o = s.cmd(None).output().unwrap();
    let err = String::from_utf8_lossy(&o.stderr);
    assert_eq!(o.status.code(), Some(2), "{}", text(&o));
    assert!(err.contains(&format!("cannot read the lock {}", lock.display())) && err.contains("larger than"), "{err}");
    assert!(!s.log(None).exists(), "refused before any log was opened");
}

#[test]
fn ctrl_c_releases_the_lock() {
    let s = setup(150);
    let lock = lock_path(&s.out(), None);
    let mut child = s.spawn(None);
    wait_until(&mut child, "the run wrote a batch", || records(&s.log(None)) >= 2);
    assert!(lock.exists());
    assert!(Command::new("kill").args(["-INT", &child.id().to_string()]).status().unwrap().success());
    let o = child.wait_with_output().unwrap();
    assert_eq!(o.status.code(), Some(130), "{}", text(&o));
    assert!(!lock.exists(), "a clean stop removes the lock");
}

#[test]
fn shards_of_one_run_share_a_folder_but_one_shard_runs_once() {
    let s = setup(300);
    let (zero, one) = (Shard { index: 0, count: 2 }, Shard { index: 1, count: 2 });
    let (lock0, lock1) = (lock_path(&s.out(), Some(zero)), lock_path(&s.out(), Some(one)));
    assert!(lock0.ends_with(".shiftbench.shard-0-of-2.lock"), "{}", lock0.display());
    let mut a = s.spawn(Some("0/2"));
    wait_until(&mut a, "shard 0 took its lock", || lock0.exists());
    let mut b = s.spawn(Some("1/2"));
    wait_until(&mut b, "shard 1 wrote a batch", || records(&s.log(Some(one))) >= 2);
    assert!(a.try_wait().unwrap().is_none(), "both shards run at once");
    assert!(lock0.exists() && lock1.exists());
    // A second run of shard 0 (a scheduler's overlapping retry) is refused.
    let again = s.cmd(Some("0/2")).output().unwrap();
    let err = String::from_utf8_lossy(&again.stderr);
    assert_eq!(again.status.code(), Some(2), "{}", text(&again));
    assert!(err.contains("(shard 0/2) is being written") && err.contains(&format!("pid {}", a.id())), "{err}");
    for c in [a, b] {
        let o = c.wait_with_output().unwrap();
        assert!(o.status.success(), "{}", text(&o));
    }
    assert!(!lock0.exists() && !lock1.exists());
    let n = |sh| read_log(&s.log(Some(sh))).unwrap().1.len();
    assert_eq!(n(zero) + n(one), 40);
    let o = Command::new(common::shiftbench_bin()).arg("merge").arg(s.out()).output().unwrap();
    assert!(o.status.success(), "{}", text(&o));
    let r: RunResult = serde_json::from_slice(&std::fs::read(s.out().join("result.json")).unwrap()).unwrap();
    assert_eq!(r.results[0].totals.evaluated, 40);
}
