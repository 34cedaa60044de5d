//! Timeouts and last words: a watchdog thread that kills the worker when a load or a batch runs
//! past its deadline, and the thread that forwards the worker's stderr and keeps its last lines
//! to explain a crash.

use std::collections::VecDeque;
use std::io::{BufRead, BufReader, Read, Write};
use std::process::Child;
use std::sync::{Arc, Condvar, Mutex};
use std::time::Instant;

#[derive(Default)]
pub(crate) struct WatchState {
    deadline: Option<Instant>,
    /// When the watchdog thread will next look (None: only when notified).
    wakes_at: Option<Instant>,
    fired: bool,
    stop: bool,
}

/// Kills the worker when a deadline passes.
pub(crate) struct Watchdog {
    shared: Arc<(Mutex<WatchState>, Condvar)>,
}

impl Watchdog {
    pub(crate) fn start(child: Arc<Mutex<Child>>) -> Watchdog {
        let shared = Arc::new((Mutex::new(WatchState::default()), Condvar::new()));
        let s = Arc::clone(&shared);
        std::thread::Builder::new()
            .name("shiftbench-watchdog".into())
            .spawn(move || {
                let (lock, cv) = &*s;
                let mut st = lock.lock().unwrap_or_else(|e| e.into_inner());
                loop {
                    if st.stop {
                        return;
                    }
                    match st.deadline {
                        None => {
                            st.wakes_at = None;
                            st = cv.wait(st).unwrap_or_else(|e| e.into_inner());
                        }
                        Some(d) if Instant::now() >= d => {
                            let _ = child.lock().unwrap_or_else(|e| e.into_inner()).kill();
                            st.fired = true;
                            st.deadline = None;
                        }
                        Some(d) => {
                            st.wakes_at = Some(d);
                            st = cv.wait_timeout(st, d - Instant::now()).unwrap_or_else(|e| e.into_inner()).0;
                        }
                    }
                }
            })
            .expect("cannot start a watchdog thread");
        Watchdog { shared }
    }

    /// Arms (or with None, disarms) the deadline. The thread is only woken when it would
    /// otherwise look too late, so a batch costs no context switch here: a disarmed or later
    /// deadline is noticed when the thread wakes at the earlier one.
    pub(crate) fn set(&self, deadline: Option<Instant>) {
        let (lock, cv) = &*self.shared;
        let mut st = lock.lock().unwrap_or_else(|e| e.into_inner());
        st.deadline = deadline;
        match (deadline, st.wakes_at) {
            (None, _) => {}
            (Some(d), Some(w)) if w <= d => {}
            _ => cv.notify_all(),
        }
    }

    pub(crate) fn fired(&self) -> bool {
        self.shared.0.lock().unwrap_or_else(|e| e.into_inner()).fired
    }
}

impl Drop for Watchdog {
    fn drop(&mut self) {
        let (lock, cv) = &*self.shared;
        lock.lock().unwrap_or_else(|e| e.into_inner()).stop = true;
        cv.notify_all();
    }
}

/// The last lines the worker wrote to stderr (they are also forwarded to ours).
#[derive(Default)]
pub(crate) struct StderrTail {
    pub(crate) lines: VecDeque<String>,
    pub(crate) eof: bool,
}

pub(crate) fn forward_stderr(pipe: std::process::ChildStderr) -> Arc<(Mutex<StderrTail>, Condvar)> {
    let tail = Arc::new((Mutex::new(StderrTail::default()), Condvar::new()));
    let t = Arc::clone(&tail);
    let _ = std::thread::Builder::new().name("shiftbench-worker-stderr".into()).spawn(move || {
        let mut r = BufReader::new(pipe);
        let mut line = Vec::new();
        loop {
            line.clear();
            // Lines are capped so a plugin printing without newlines cannot exhaust memory.
            match r.by_ref().take(8192).read_until(b'\n', &mut line) {
                Ok(0) | Err(_) => break,
                Ok(_) => {
                    let _ = std::io::stderr().write_all(&line);
                    let text = String::from_utf8_lossy(&line).trim_end().to_string();
                    if !text.is_empty() {
                        let mut g = t.0.lock().unwrap_or_else(|e| e.into_inner());
                        g.lines.push_back(text);
                        if g.lines.len() > 4 {
                            g.lines.pop_front();
                        }
                    }
                }
            }
        }
        t.0.lock().unwrap_or_else(|e| e.into_inner()).eof = true;
        t.1.notify_all();
    });
    tail
}
