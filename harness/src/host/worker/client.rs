//! The harness's side of a worker: [`WorkerModel`], a [`Scorer`] like
//! [`LoadedModel`](crate::host::plugin::LoadedModel), so the pipeline does not know the
//! difference. Any broken exchange (EOF, a malformed frame, a timeout) becomes [`ModelStopped`]
//! with one sentence saying what happened.

use std::io::BufReader;
use std::path::{Path, PathBuf};
use std::process::{Child, ChildStdin, ChildStdout, Command, ExitStatus, Stdio};
use std::sync::{Arc, Condvar, Mutex};
use std::time::{Duration, Instant};

use abi_stable::std_types::{RString, RVec};
use anyhow::{anyhow, bail, Result};
use shiftbench_plugin::{ModelCard, PreprocessSpec, ScoreKind};

use super::protocol::{read_f32s, read_head, read_text, write_frame, CardWire, SHM_FD};
use super::shm::SharedOut;
use super::watchdog::{forward_stderr, StderrTail, Watchdog};
use crate::host::plugin::checked_state;
use crate::host::scorer::{filled, ModelBackend, ModelState, ModelStopped, Output, Scorer};

/// The hidden subcommand that runs a worker.
pub const WORKER_COMMAND: &str = "__worker";

/// Default `--batch-timeout`, seconds: a generous bound for one batch of a large model on a CPU.
pub const DEFAULT_BATCH_TIMEOUT: f64 = 300.0;

/// Default `--load-timeout`, seconds.
pub const DEFAULT_LOAD_TIMEOUT: f64 = 300.0;

/// How workers are started: the executable, and how long a load or a batch may take.
#[derive(Debug, Clone, PartialEq)]
pub struct WorkerOptions {
    /// The `shiftbench` executable (it has the `__worker` subcommand).
    pub exe: PathBuf,
    /// Longest a batch may take.
    pub batch_timeout: Duration,
    /// Longest loading a model may take.
    pub load_timeout: Duration,
}

impl WorkerOptions {
    /// Default timeouts, with this process's executable as the worker.
    pub fn current_exe() -> Result<WorkerOptions> {
        Ok(WorkerOptions {
            exe: std::env::current_exe()
                .map_err(|e| anyhow!("cannot find the shiftbench executable to start workers: {e}"))?,
            batch_timeout: Duration::from_secs_f64(DEFAULT_BATCH_TIMEOUT),
            load_timeout: Duration::from_secs_f64(DEFAULT_LOAD_TIMEOUT),
        })
    }
}

/// How long a worker may take to exit after its stdin closes before it is killed.
const EXIT_GRACE: Duration = Duration::from_secs(2);

/// A model running in a worker process.
pub struct WorkerModel {
    /// The card the worker sent (until then, a placeholder naming the library as the plugin).
    state: ModelState,
    library: PathBuf,
    child: Arc<Mutex<Child>>,
    stdin: Option<ChildStdin>,
    stdout: BufReader<ChildStdout>,
    watchdog: Watchdog,
    stderr: Arc<(Mutex<StderrTail>, Condvar)>,
    batch_timeout: Duration,
    /// Why the worker is gone, once it is.
    stopped: Option<String>,
    /// Where batches go (None: over the pipe).
    shm: Option<SharedOut>,
}

impl std::fmt::Debug for WorkerModel {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("WorkerModel").field("name", &self.state.card.name).field("library", &self.library).finish()
    }
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

impl WorkerModel {
    /// Starts `n` workers for `library` (with its model YAML) at once, so they load in
    /// parallel, and waits for all of their cards.
    ///
    /// Call it from a thread that outlives the workers (the run's own thread): Linux kills a
    /// worker when the thread that started it exits (the worker's parent-death signal follows the
    /// thread, not the process). The models may then be used from any thread.
    pub fn spawn_many(
        opts: &WorkerOptions,
        library: &Path,
        config: Option<&Path>,
        threads: u32,
        n: usize,
    ) -> Result<Vec<WorkerModel>> {
        let pending: Vec<PendingWorker> =
            (0..n).map(|_| Self::start(opts, library, config, threads)).collect::<Result<_>>()?;
        pending.into_iter().map(PendingWorker::ready).collect()
    }

    /// Starts a worker process; [`PendingWorker::ready`] waits for its card.
    fn start(opts: &WorkerOptions, library: &Path, config: Option<&Path>, threads: u32) -> Result<PendingWorker> {
        let mut cmd = Command::new(&opts.exe);
        cmd.arg(WORKER_COMMAND).arg("--library").arg(library).arg("--threads").arg(threads.to_string());
        if let Some(c) = config {
            cmd.arg("--config").arg(c);
        }
        cmd.stdin(Stdio::piped()).stdout(Stdio::piped()).stderr(Stdio::piped());
        #[cfg(unix)]
        {
            use std::os::unix::process::CommandExt;
            // Its own process group: a Ctrl-C at the terminal is the harness's to handle.
            cmd.process_group(0);
        }
        let shm = SharedOut::new().ok();
        #[cfg(unix)]
        if let Some(shm) = &shm {
            use std::os::fd::AsRawFd;
            use std::os::unix::process::CommandExt;
            let fd = shm.file.as_raw_fd();
            cmd.arg("--shm-fd").arg(SHM_FD.to_string());
            // SAFETY: between fork and exec only async-signal-safe calls (dup2, fcntl) on fds
            // the child inherited.
            unsafe {
                cmd.pre_exec(move || {
                    if fd == SHM_FD {
                        // Already fd 3: only let it survive exec.
                        if libc::fcntl(fd, libc::F_SETFD, 0) < 0 {
                            return Err(std::io::Error::last_os_error());
                        }
                    } else if libc::dup2(fd, SHM_FD) < 0 {
                        return Err(std::io::Error::last_os_error());
                    }
                    Ok(())
                });
            }
        }
        let mut child = cmd
            .spawn()
            .map_err(|e| anyhow!("cannot start a worker process ({} {WORKER_COMMAND}): {e}", opts.exe.display()))?;
        let stdin = child.stdin.take().expect("piped");
        let stdout = BufReader::with_capacity(1 << 16, child.stdout.take().expect("piped"));
        let stderr = forward_stderr(child.stderr.take().expect("piped"));
        let child = Arc::new(Mutex::new(child));
        let watchdog = Watchdog::start(Arc::clone(&child));
        let w = WorkerModel {
            state: ModelState {
                card: ModelCard {
                    name: RString::new(),
                    labels: RVec::new(),
                    preprocess: PreprocessSpec::IMAGENET,
                    max_batch: 0,
                    scores: ScoreKind::Logits,
                },
                labels: vec![],
                plugin_name: library.display().to_string(),
                embedding_len: 0,
                output: Output::Scores,
            },
            library: library.to_path_buf(),
            child,
            stdin: Some(stdin),
            stdout,
            watchdog,
            stderr,
            batch_timeout: opts.batch_timeout,
            stopped: None,
            shm,
        };
        Ok(PendingWorker { w, load_timeout: opts.load_timeout })
    }
}

/// A worker process started, its model still loading.
struct PendingWorker {
    w: WorkerModel,
    load_timeout: Duration,
}

impl PendingWorker {
    /// Waits (up to the load timeout) for the worker's card, or says why it did not come.
    fn ready(self) -> Result<WorkerModel> {
        let PendingWorker { mut w, load_timeout } = self;
        let library = w.library.clone();
        let library = library.as_path();
        w.watchdog.set(Some(Instant::now() + load_timeout));
        let answer = read_head(&mut w.stdout).and_then(|h| match h {
            Some((t @ (b'C' | b'L'), len)) => Ok((t, read_text(&mut w.stdout, len)?)),
            Some((t, _)) => Err(std::io::Error::new(std::io::ErrorKind::InvalidData, format!("unexpected frame {t}"))),
            None => Err(std::io::ErrorKind::UnexpectedEof.into()),
        });
        w.watchdog.set(None);
        match answer {
            Ok((b'C', json)) => {
                let wire: CardWire = serde_json::from_str(&json)
                    .map_err(|e| anyhow!("the worker for {} sent a malformed card: {e}", library.display()))?;
                w.state = checked_state(wire.card()?, wire.plugin_name.clone(), wire.embedding_len)?;
                Ok(w)
            }
            Ok((_, err)) => Err(anyhow!(err)),
            Err(e) => {
                let limit = format!("{} s (--load-timeout)", load_timeout.as_secs_f64());
                let why = w.failure("while loading the model", &limit, &e);
                bail!("{why}")
            }
        }
    }
}

impl WorkerModel {
    /// Explains why an exchange with the worker failed and makes sure it is gone.
    /// `limit` names the timeout that applied (`300 s (--batch-timeout)`).
    fn failure(&mut self, during: &str, limit: &str, io: &std::io::Error) -> String {
        let lib = self.library.display().to_string();
        let who = if self.state.plugin_name == lib {
            format!("plugin {lib}")
        } else {
            format!("plugin {} ({lib})", self.state.plugin_name)
        };
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
    fn reap(&self, grace: Duration) -> Option<ExitStatus> {
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

    fn exchange(&mut self, input: &[f32], batch: usize) -> std::io::Result<Result<Vec<f32>, (bool, String)>> {
        let bytes: &[u8] = bytemuck::cast_slice(input);
        match self.shm.as_mut().map(|m| m.put(bytes)) {
            Some(Ok(())) => self.send_shared(batch, bytes.len())?,
            // No shared memory, or it could not grow (out of memory for /dev/shm): the pipe.
            _ => {
                let stdin = self.stdin.as_mut().ok_or(std::io::ErrorKind::BrokenPipe)?;
                write_frame(stdin, b'I', &[&(batch as u32).to_le_bytes(), bytes])?
            }
        }
        self.receive(batch)
    }

    /// Tells the worker that a batch of `bytes` is in the shared memory.
    fn send_shared(&mut self, batch: usize, bytes: usize) -> std::io::Result<()> {
        let stdin = self.stdin.as_mut().ok_or(std::io::ErrorKind::BrokenPipe)?;
        let mut head = [0u8; 12];
        head[..4].copy_from_slice(&(batch as u32).to_le_bytes());
        head[4..].copy_from_slice(&(bytes as u64).to_le_bytes());
        write_frame(stdin, b'M', &[&head])
    }

    /// The worker's answer to the batch in flight.
    fn receive(&mut self, batch: usize) -> std::io::Result<Result<Vec<f32>, (bool, String)>> {
        let (tag, len) = read_head(&mut self.stdout)?.ok_or(std::io::ErrorKind::UnexpectedEof)?;
        match tag {
            b'S' => {
                let n = batch * self.row_len();
                if len != (n * 4) as u64 {
                    return Err(std::io::Error::new(
                        std::io::ErrorKind::InvalidData,
                        format!("a {len}-byte reply to a batch of {batch}, expected {} bytes", n * 4),
                    ));
                }
                Ok(Ok(read_f32s(&mut self.stdout, n)?))
            }
            b'E' => Ok(Err((false, read_text(&mut self.stdout, len)?))),
            b'F' => Ok(Err((true, read_text(&mut self.stdout, len)?))),
            t => Err(std::io::Error::new(std::io::ErrorKind::InvalidData, format!("an unexpected reply (tag {t})"))),
        }
    }
}

impl ModelBackend for WorkerModel {
    fn state(&self) -> &ModelState {
        &self.state
    }

    fn state_mut(&mut self) -> &mut ModelState {
        &mut self.state
    }

    /// Tells the worker, which must still be running.
    fn switch_output(&mut self, output: Output) -> Result<()> {
        if let Some(why) = &self.stopped {
            return Err(ModelStopped(why.clone()).into());
        }
        let byte = [(output == Output::Embedding) as u8];
        let sent = match self.stdin.as_mut() {
            Some(stdin) => write_frame(stdin, b'O', &[&byte]),
            None => Err(std::io::ErrorKind::BrokenPipe.into()),
        };
        if let Err(io) = sent {
            let why = self.failure("while switching its output", "no limit", &io);
            self.stopped = Some(why.clone());
            return Err(ModelStopped(why).into());
        }
        Ok(())
    }

    fn run(&mut self, input: &[f32], batch: usize) -> Result<Vec<f32>> {
        self.check_batch(batch, input.len())?;
        self.timed(batch, |w| w.exchange(input, batch))
    }

    /// The batch's input is normalised straight into the shared memory (no tensor is copied),
    /// when there is one.
    fn run_filled(
        &mut self,
        batch: usize,
        len: usize,
        scratch: &mut Vec<f32>,
        fill: &mut dyn FnMut(&mut [f32]),
    ) -> Result<Vec<f32>> {
        self.check_batch(batch, len)?;
        match self.shm.as_mut().and_then(|m| m.reserve(len * 4).ok()) {
            Some(bytes) => {
                // Page-aligned, so it is a slice of f32.
                fill(bytemuck::cast_slice_mut(bytes));
                self.timed(batch, |w| w.send_shared(batch, len * 4).and_then(|()| w.receive(batch)))
            }
            None => self.run(filled(scratch, len, fill), batch),
        }
    }
}

impl WorkerModel {
    /// A stopped model answers nothing; a batch must be `batch` images of the card's size.
    fn check_batch(&self, batch: usize, len: usize) -> Result<()> {
        if let Some(why) = &self.stopped {
            return Err(ModelStopped(why.clone()).into());
        }
        let expect_in = batch * self.state.card.preprocess.image_len();
        if len != expect_in {
            bail!("internal error: batch of {batch} needs {expect_in} values, got {len}");
        }
        Ok(())
    }

    /// Runs one exchange under the batch timeout and says what its outcome means for the batch
    /// and the model.
    fn timed(
        &mut self,
        batch: usize,
        exchange: impl FnOnce(&mut Self) -> std::io::Result<Result<Vec<f32>, (bool, String)>>,
    ) -> Result<Vec<f32>> {
        self.watchdog.set(Some(Instant::now() + self.batch_timeout));
        let r = exchange(self);
        self.watchdog.set(None);
        match r {
            Ok(Ok(scores)) => Ok(scores),
            Ok(Err((false, e))) => Err(anyhow!(e)),
            Ok(Err((true, e))) => {
                self.stopped = Some(e.clone());
                Err(ModelStopped(e).into())
            }
            Err(io) => {
                let limit = format!("{} s (--batch-timeout)", self.batch_timeout.as_secs_f64());
                let why = self.failure(&format!("while scoring a batch of {batch} images"), &limit, &io);
                self.stopped = Some(why.clone());
                Err(ModelStopped(why).into())
            }
        }
    }
}

impl Drop for WorkerModel {
    fn drop(&mut self) {
        // Closing stdin asks the worker to exit; one that does not is killed.
        drop(self.stdin.take());
        self.reap(EXIT_GRACE);
    }
}
