//! A worker process as both kinds of worker client hold it (a model's, [`super::client`], and a
//! text encoder's, [`super::text_client`]): its pipes, its watchdog, its stderr's last lines, and
//! the one sentence that says why an exchange with it failed.

use std::io::BufReader;
use std::path::{Path, PathBuf};
use std::process::{Child, ChildStdin, ChildStdout, Command, ExitStatus, Stdio};
use std::sync::{Arc, Condvar, Mutex};
use std::time::{Duration, Instant};

use anyhow::{anyhow, Result};

use super::watchdog::{forward_stderr, StderrTail, Watchdog};

/// The hidden subcommand that runs a worker.
pub const WORKER_COMMAND: &str = "__worker";

/// How long a worker may take to exit after its stdin closes before it is killed.
pub(crate) const EXIT_GRACE: Duration = Duration::from_secs(2);

/// A started worker process. Dropping it closes its stdin (which asks it to exit) and kills it if
/// it does not.
pub(crate) struct WorkerProcess {
    pub(crate) library: PathBuf,
    child: Arc<Mutex<Child>>,
    pub(crate) stdin: Option<ChildStdin>,
    pub(crate) stdout: BufReader<ChildStdout>,
    pub(crate) watchdog: Watchdog,
    stderr: Arc<(Mutex<StderrTail>, Condvar)>,
}

fn signal_name(sig: i32) -> String {
    let name = match sig {
        4 => "SIGILL, illegal instruction",
        6 => "SIGABRT, the plugin aborted",
        7 => "SIGBUS, bus error",
        8 => "SIGFPE, arithmetic exception",
        9 => "SIGKILL: killed, perhaps by the out-of-memory killer",
        11 => "SIGSEGV, segmentation fault",
        15 => "SIGTERM",
        _ => return format!("signal {sig}"),
    };
    format!("signal {sig} ({name})")
}

fn describe_exit(status: ExitStatus) -> String {
    #[cfg(unix)]
    {
        use std::os::unix::process::ExitStatusExt;
        if let Some(sig) = status.signal() {
            return format!("was killed by {}", signal_name(sig));
        }
    }
    match status.code() {
        Some(c) => format!("exited with status {c}"),
        None => format!("ended ({status})"),
    }
}

impl WorkerProcess {
    /// Starts `cmd` (`exe __worker ...`, its arguments and any fds to inherit already set) with
    /// piped stdio in its own process group, its stderr forwarded, a watchdog ready.
    pub(crate) fn spawn(mut cmd: Command, exe: &Path, library: &Path) -> Result<WorkerProcess> {
        cmd.stdin(Stdio::piped()).stdout(Stdio::piped()).stderr(Stdio::piped());
        #[cfg(unix)]
        {
            use std::os::unix::process::CommandExt;
            // Its own process group: a Ctrl-C at the terminal is the harness's to handle.
            cmd.process_group(0);
        }
        let mut child = cmd
            .spawn()
            .map_err(|e| anyhow!("cannot start a worker process ({} {WORKER_COMMAND}): {e}", exe.display()))?;
        let stdin = child.stdin.take().expect("piped");
        let stdout = BufReader::with_capacity(1 << 16, child.stdout.take().expect("piped"));
        let stderr = forward_stderr(child.stderr.take().expect("piped"));
        let child = Arc::new(Mutex::new(child));
        let watchdog = Watchdog::start(Arc::clone(&child));
        Ok(WorkerProcess { library: library.to_path_buf(), child, stdin: Some(stdin), stdout, watchdog, stderr })
    }

    /// Explains why an exchange with the worker failed and makes sure it is gone. `who` names
    /// what runs in it (`plugin onnx (/path/lib.so)`), `during` what it was doing, `limit` the
    /// timeout that applied (`300 s (--batch-timeout)`).
    pub(crate) fn failure(&mut self, who: &str, during: &str, limit: &str, io: &std::io::Error) -> String {
        let what = if self.watchdog.fired() {
            self.reap(Duration::ZERO);
            format!("{who} did not answer within {limit} {during}: its worker was killed")
        } else {
            // The stream broke: the worker is dying or dead. Give it a moment, then make sure.
            match self.reap(EXIT_GRACE) {
                Some(s) => format!("{who} crashed {during}: its worker process {}", describe_exit(s)),
                None => format!("{who} broke the worker protocol {during} ({io}): its worker was killed"),
            }
        };
        // Wait briefly for the last stderr lines, which often say why.
        let (lock, cv) = &*self.stderr;
        let g = lock.lock().unwrap_or_else(|e| e.into_inner());
        let g = cv.wait_timeout_while(g, Duration::from_millis(500), |t| !t.eof).unwrap_or_else(|e| e.into_inner()).0;
        let last: Vec<&str> = g.lines.iter().map(String::as_str).filter(|l| !l.starts_with("note: run with")).collect();
        let mut why = what;
        if !last.is_empty() {
            let mut words = last.join(" | ");
            if words.len() > 400 {
                let mut cut = words.len() - 400;
                while !words.is_char_boundary(cut) {
                    cut += 1;
                }
                words = format!("...{}", &words[cut..]);
            }
            why = format!("{why}; its last words on stderr: {words}");
        }
        why
    }

    /// Waits up to `grace` for the worker to exit, then kills it. Returns how it exited on its
    /// own, or None when it had to be killed. (Polls: the watchdog needs the lock to kill.)
    pub(crate) fn reap(&self, grace: Duration) -> Option<ExitStatus> {
        let deadline = Instant::now() + grace;
        loop {
            let mut c = self.child.lock().unwrap_or_else(|e| e.into_inner());
            match c.try_wait() {
                Ok(Some(s)) => return Some(s),
                Ok(None) if Instant::now() < deadline => {}
                _ => {
                    let _ = c.kill();
                    let _ = c.wait();
                    return None;
                }
            }
            drop(c);
            std::thread::sleep(Duration::from_millis(5));
        }
    }
}

impl Drop for WorkerProcess {
    fn drop(&mut self) {
        // Closing stdin asks the worker to exit; one that does not is killed.
        drop(self.stdin.take());
        self.reap(EXIT_GRACE);
    }
}
