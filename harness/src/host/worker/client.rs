//! The harness's side of a worker: [`WorkerModel`], a [`Scorer`] like
//! [`LoadedModel`](crate::host::plugin::LoadedModel), so the pipeline does not know the
//! difference. Any broken exchange (EOF, a malformed frame, a timeout) becomes [`ModelStopped`]
//! with one sentence saying what happened.

use std::path::{Path, PathBuf};
use std::process::Command;
use std::time::{Duration, Instant};

use abi_stable::std_types::{RString, RVec};
use anyhow::{anyhow, bail, Result};
use shiftbench_plugin::{ModelCard, PreprocessSpec, ScoreKind};

use super::process::{WorkerProcess, WORKER_COMMAND};
use super::protocol::{read_f32s, read_head, read_text, write_frame, CardWire, SHM_FD};
use super::shm::SharedOut;
use crate::host::plugin::checked_state;
use crate::host::scorer::{filled, ModelBackend, ModelState, ModelStopped, Output, Scorer};

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

/// A model running in a worker process.
pub struct WorkerModel {
    /// The card the worker sent (until then, a placeholder naming the library as the plugin).
    state: ModelState,
    /// The process (dropping it closes its stdin, which ends it).
    proc: WorkerProcess,
    batch_timeout: Duration,
    /// Why the worker is gone, once it is.
    stopped: Option<String>,
    /// Where batches go (None: over the pipe).
    shm: Option<SharedOut>,
}

impl std::fmt::Debug for WorkerModel {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("WorkerModel").field("name", &self.state.card.name).field("library", &self.proc.library).finish()
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
        let proc = WorkerProcess::spawn(cmd, &opts.exe, library)?;
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
            proc,
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
        let library = w.proc.library.clone();
        let library = library.as_path();
        w.proc.watchdog.set(Some(Instant::now() + load_timeout));
        let answer = read_head(&mut w.proc.stdout).and_then(|h| match h {
            Some((t @ (b'C' | b'L'), len)) => Ok((t, read_text(&mut w.proc.stdout, len)?)),
            Some((t, _)) => Err(std::io::Error::new(std::io::ErrorKind::InvalidData, format!("unexpected frame {t}"))),
            None => Err(std::io::ErrorKind::UnexpectedEof.into()),
        });
        w.proc.watchdog.set(None);
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
        let lib = self.proc.library.display().to_string();
        let who = if self.state.plugin_name == lib {
            format!("plugin {lib}")
        } else {
            format!("plugin {} ({lib})", self.state.plugin_name)
        };
        self.proc.failure(&who, during, limit, io)
    }

    fn exchange(&mut self, input: &[f32], batch: usize) -> std::io::Result<Result<Vec<f32>, (bool, String)>> {
        let bytes: &[u8] = bytemuck::cast_slice(input);
        match self.shm.as_mut().map(|m| m.put(bytes)) {
            Some(Ok(())) => self.send_shared(batch, bytes.len())?,
            // No shared memory, or it could not grow (out of memory for /dev/shm): the pipe.
            _ => {
                let stdin = self.proc.stdin.as_mut().ok_or(std::io::ErrorKind::BrokenPipe)?;
                write_frame(stdin, b'I', &[&(batch as u32).to_le_bytes(), bytes])?
            }
        }
        self.receive(batch)
    }

    /// Tells the worker that a batch of `bytes` is in the shared memory.
    fn send_shared(&mut self, batch: usize, bytes: usize) -> std::io::Result<()> {
        let stdin = self.proc.stdin.as_mut().ok_or(std::io::ErrorKind::BrokenPipe)?;
        let mut head = [0u8; 12];
        head[..4].copy_from_slice(&(batch as u32).to_le_bytes());
        head[4..].copy_from_slice(&(bytes as u64).to_le_bytes());
        write_frame(stdin, b'M', &[&head])
    }

    /// The worker's answer to the batch in flight.
    fn receive(&mut self, batch: usize) -> std::io::Result<Result<Vec<f32>, (bool, String)>> {
        let (tag, len) = read_head(&mut self.proc.stdout)?.ok_or(std::io::ErrorKind::UnexpectedEof)?;
        match tag {
            b'S' => {
                let n = batch * self.row_len();
                if len != (n * 4) as u64 {
                    return Err(std::io::Error::new(
                        std::io::ErrorKind::InvalidData,
                        format!("a {len}-byte reply to a batch of {batch}, expected {} bytes", n * 4),
                    ));
                }
                Ok(Ok(read_f32s(&mut self.proc.stdout, n)?))
            }
            b'E' => Ok(Err((false, read_text(&mut self.proc.stdout, len)?))),
            b'F' => Ok(Err((true, read_text(&mut self.proc.stdout, len)?))),
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
        let sent = match self.proc.stdin.as_mut() {
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
        self.proc.watchdog.set(Some(Instant::now() + self.batch_timeout));
        let r = exchange(self);
        self.proc.watchdog.set(None);
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
