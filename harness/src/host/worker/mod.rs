//! Isolation: each model runs in a worker process, so a plugin that segfaults, aborts, hangs or
//! leaks takes down only its worker, never the run.
//!
//! The harness spawns its own executable with the hidden subcommand `__worker` (see [`serve`]),
//! which loads the plugin with [`LoadedModel::load`] (so every check of the in-process path
//! applies there too) and answers requests on its stdin/stdout. [`WorkerModel`] is the harness's
//! side: a [`Scorer`] like [`LoadedModel`], so the pipeline does not know the difference.
//!
//! ## Protocol
//! Frames in both directions: a tag byte, the payload length as a little-endian u64, the payload.
//! Batches and scores travel as raw native-endian f32 bytes (both ends are the same binary on the
//! same machine), no per-value encoding.
//!
//! On Linux a batch does not cross the pipe at all: the harness creates an anonymous shared
//! memory file (`memfd_create`), hands it to the worker as fd 3 (`--shm-fd 3`), copies each
//! batch into it and sends only an `M` frame; the worker maps it read-only and gives the plugin
//! a slice of it. That saves two kernel copies and the worker's fresh pages per batch (19 MB for
//! 32 images at 224 px). The harness writes the memory only while no batch is in flight, and
//! the worker only reads it, so a plugin cannot change what the harness sees. Elsewhere, or if
//! the memory cannot be set up, batches travel over the pipe in `I` frames.
//!
//! | tag | direction | payload |
//! |-----|-----------|---------|
//! | `I` | harness -> worker | batch size (u32 LE), then `batch * image_len` f32 |
//! | `M` | harness -> worker | batch size (u32 LE), byte length (u64 LE): the batch is at the start of the shared memory |
//! | `C` | worker -> harness | the model card as JSON (once, after loading) |
//! | `L` | worker -> harness | the load error, UTF-8 (then the worker exits) |
//! | `S` | worker -> harness | `batch * labels` f32 scores |
//! | `E` | worker -> harness | the plugin's error for this batch, UTF-8 |
//! | `F` | worker -> harness | the model stopped for good (it panicked, or broke the contract), UTF-8 |
//!
//! Closing the worker's stdin asks it to exit. The worker keeps its stdout for the protocol only:
//! at start it moves the protocol to a private copy of fd 1 and points fd 1 at stderr, so a
//! plugin that prints cannot corrupt a frame. Its stderr is the harness's (forwarded line by
//! line; the last lines are kept to explain a crash).
//!
//! ## Timeouts and crashes
//! A watchdog thread kills the worker when a load or a batch takes longer than its timeout. Any
//! broken exchange (EOF, a malformed frame, a timeout) turns into [`ModelStopped`] with one
//! sentence saying what happened: the signal that killed the worker (SIGSEGV, SIGABRT, ...), its
//! exit status, or the timeout, plus the worker's last words on stderr. The worker runs in its
//! own process group, so a Ctrl-C at the terminal reaches only the harness (which then stops
//! cleanly after the batch in flight), and on Linux it is killed if the harness dies.

use std::collections::VecDeque;
use std::io::{BufRead, BufReader, BufWriter, Read, Write};
use std::path::{Path, PathBuf};
use std::process::{Child, ChildStdin, ChildStdout, Command, ExitStatus, Stdio};
use std::sync::{Arc, Condvar, Mutex};
use std::time::{Duration, Instant};

use abi_stable::std_types::{RString, RVec};
use anyhow::{anyhow, bail, Result};
use serde::{Deserialize, Serialize};
use shiftbench_plugin::{ChannelOrder, Interpolation, Layout, ModelCard, PreprocessSpec, ScoreKind};

use crate::plugin::{validate_card, LoadedModel, ModelStopped, Scorer};

/// The hidden subcommand that runs a worker.
pub const WORKER_COMMAND: &str = "__worker";

/// Default `--batch-timeout`, seconds: a generous bound for one batch of a large model on a CPU.
pub const DEFAULT_BATCH_TIMEOUT: f64 = 300.0;
/// Default `--load-timeout`, seconds.
pub const DEFAULT_LOAD_TIMEOUT: f64 = 300.0;

/// Largest text frame (card, error message) accepted from a worker.
const MAX_TEXT_FRAME: u64 = 64 << 20;
/// Largest batch frame a worker accepts (4 GiB of f32).
const MAX_BATCH_FRAME: u64 = 4 << 30;
/// The fd number the worker finds the shared memory at.
const SHM_FD: i32 = 3;
/// How long a worker may take to exit after its stdin closes before it is killed.
const EXIT_GRACE: Duration = Duration::from_secs(2);

/// How the run loads models. The library default is in-process (a program embedding the
/// library has no `__worker` subcommand); the CLI defaults to worker processes.
#[derive(Debug, Clone, PartialEq, Default)]
pub enum Isolation {
    /// Load plugins into this process (`--in-process`): fastest to debug, but a crashing plugin
    /// takes the run down with it.
    #[default]
    InProcess,
    /// Run every model in a worker process.
    Worker(WorkerOptions),
}

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
            exe: std::env::current_exe().map_err(|e| anyhow!("cannot find the shiftbench executable to start workers: {e}"))?,
            batch_timeout: Duration::from_secs_f64(DEFAULT_BATCH_TIMEOUT),
            load_timeout: Duration::from_secs_f64(DEFAULT_LOAD_TIMEOUT),
        })
    }
}

/// The command-line options that choose [`Isolation`] (`run` and `demo` flatten them in).
#[derive(clap::Args, Debug, Clone)]
pub struct IsolationArgs {
    /// Load plugins into the shiftbench process instead of one worker process per model: for
    /// debugging a plugin; a plugin that crashes then takes the whole run down.
    #[arg(long)]
    pub in_process: bool,
    /// Seconds one batch may take before its model's worker is killed and the model stopped.
    #[arg(long, value_name = "SECS", default_value_t = DEFAULT_BATCH_TIMEOUT, value_parser = parse_secs)]
    pub batch_timeout: f64,
    /// Seconds loading a model may take before its worker is killed.
    #[arg(long, value_name = "SECS", default_value_t = DEFAULT_LOAD_TIMEOUT, value_parser = parse_secs)]
    pub load_timeout: f64,
}

fn parse_secs(s: &str) -> Result<f64, String> {
    match s.parse::<f64>() {
        Ok(v) if v > 0.0 && v < 1e9 => Ok(v),
        _ => Err(format!("expected a positive number of seconds, got {s:?}")),
    }
}

impl IsolationArgs {
    pub fn isolation(&self) -> Result<Isolation> {
        if self.in_process {
            return Ok(Isolation::InProcess);
        }
        let mut o = WorkerOptions::current_exe()?;
        o.batch_timeout = Duration::from_secs_f64(self.batch_timeout);
        o.load_timeout = Duration::from_secs_f64(self.load_timeout);
        Ok(Isolation::Worker(o))
    }
}

/// Opens `n` copies of `--model` as the isolation mode says: worker processes start at once and
/// load in parallel. Call it from the run's own thread (see [`WorkerModel::spawn_many`]).
pub fn open_scorers(arg: &str, threads: u32, isolation: &Isolation, n: usize) -> Result<Vec<Box<dyn Scorer + Send>>> {
    let r = crate::plugin::resolve_model(arg)?;
    Ok(match isolation {
        Isolation::InProcess => (0..n)
            .map(|_| Ok(Box::new(LoadedModel::load(&r.library, r.config.as_deref(), threads)?) as Box<dyn Scorer + Send>))
            .collect::<Result<_>>()?,
        Isolation::Worker(o) => WorkerModel::spawn_many(o, &r.library, r.config.as_deref(), threads, n)?
            .into_iter()
            .map(|w| Box::new(w) as Box<dyn Scorer + Send>)
            .collect(),
    })
}

/// A name for `--model` before its card is known (the error row of a model that did not load):
/// the model YAML's name, or the plugin's.
pub fn display_name(arg: &str) -> String {
    let p = Path::new(arg);
    if matches!(p.extension().and_then(|e| e.to_str()), Some("yaml" | "yml")) {
        if let Ok(c) = shiftbench_model_config::ModelConfig::load(p) {
            return c.name;
        }
    }
    let stem = p.file_stem().map(|s| s.to_string_lossy().into_owned()).unwrap_or_else(|| arg.to_string());
    let stem = stem.strip_prefix(std::env::consts::DLL_PREFIX).unwrap_or(&stem);
    stem.strip_prefix("shiftbench_").unwrap_or(stem).to_string()
}

// ---------------------------------------------------------------------------------------------
// Framing

fn write_frame(w: &mut impl Write, tag: u8, parts: &[&[u8]]) -> std::io::Result<()> {
    let len: usize = parts.iter().map(|p| p.len()).sum();
    // The header and the small parts in one write; the last (large) part straight from its buffer.
    let (last, small) = parts.split_last().map(|(l, s)| (*l, s)).unwrap_or((&[][..], &[][..]));
    let mut head = Vec::with_capacity(9 + small.iter().map(|p| p.len()).sum::<usize>());
    head.push(tag);
    head.extend_from_slice(&(len as u64).to_le_bytes());
    for p in small {
        head.extend_from_slice(p);
    }
    w.write_all(&head)?;
    w.write_all(last)?;
    w.flush()
}

/// Reads a frame header; `None` at a clean end of stream.
fn read_head(r: &mut impl Read) -> std::io::Result<Option<(u8, u64)>> {
    let mut head = [0u8; 9];
    let mut got = 0;
    while got < head.len() {
        match r.read(&mut head[got..]) {
            Ok(0) if got == 0 => return Ok(None),
            Ok(0) => return Err(std::io::ErrorKind::UnexpectedEof.into()),
            Ok(n) => got += n,
            Err(e) if e.kind() == std::io::ErrorKind::Interrupted => {}
            Err(e) => return Err(e),
        }
    }
    Ok(Some((head[0], u64::from_le_bytes(head[1..].try_into().expect("8 bytes")))))
}

fn read_text(r: &mut impl Read, len: u64) -> std::io::Result<String> {
    if len > MAX_TEXT_FRAME {
        return Err(std::io::Error::new(std::io::ErrorKind::InvalidData, format!("a {len}-byte message is too long")));
    }
    let mut buf = vec![0u8; len as usize];
    r.read_exact(&mut buf)?;
    Ok(String::from_utf8_lossy(&buf).into_owned())
}

fn read_f32s(r: &mut impl Read, n: usize) -> std::io::Result<Vec<f32>> {
    let mut v = vec![0f32; n];
    r.read_exact(bytemuck::cast_slice_mut(&mut v))?;
    Ok(v)
}

/// The model card as it crosses the pipe.
#[derive(Debug, Serialize, Deserialize)]
struct CardWire {
    plugin_name: String,
    name: String,
    labels: Vec<String>,
    resize: u32,
    crop: u32,
    interpolation: String,
    channel_order: String,
    layout: String,
    scale: f32,
    mean: [f32; 3],
    std: [f32; 3],
    max_batch: u32,
    scores: String,
}

impl CardWire {
    fn new(card: &ModelCard, plugin_name: &str) -> CardWire {
        let p = &card.preprocess;
        CardWire {
            plugin_name: plugin_name.to_string(),
            name: card.name.to_string(),
            labels: card.labels.iter().map(|l| l.to_string()).collect(),
            resize: p.resize,
            crop: p.crop,
            interpolation: format!("{:?}", p.interpolation),
            channel_order: format!("{:?}", p.channel_order),
            layout: format!("{:?}", p.layout),
            scale: p.scale,
            mean: p.mean,
            std: p.std,
            max_batch: card.max_batch,
            scores: format!("{:?}", card.scores),
        }
    }

    fn card(&self) -> Result<ModelCard> {
        let bad = |what: &str, v: &str| anyhow!("the worker sent an unknown {what} {v:?}");
        Ok(ModelCard {
            name: RString::from(self.name.as_str()),
            labels: self.labels.iter().map(|l| RString::from(l.as_str())).collect::<RVec<_>>(),
            preprocess: PreprocessSpec {
                resize: self.resize,
                crop: self.crop,
                interpolation: match self.interpolation.as_str() {
                    "Nearest" => Interpolation::Nearest,
                    "Bilinear" => Interpolation::Bilinear,
                    "Bicubic" => Interpolation::Bicubic,
                    v => return Err(bad("interpolation", v)),
                },
                channel_order: match self.channel_order.as_str() {
                    "Rgb" => ChannelOrder::Rgb,
                    "Bgr" => ChannelOrder::Bgr,
                    v => return Err(bad("channel order", v)),
                },
                layout: match self.layout.as_str() {
                    "Nchw" => Layout::Nchw,
                    "Nhwc" => Layout::Nhwc,
                    v => return Err(bad("layout", v)),
                },
                scale: self.scale,
                mean: self.mean,
                std: self.std,
            },
            max_batch: self.max_batch,
            scores: match self.scores.as_str() {
                "Logits" => ScoreKind::Logits,
                "Probabilities" => ScoreKind::Probabilities,
                v => return Err(bad("score kind", v)),
            },
        })
    }
}

// ---------------------------------------------------------------------------------------------
// The worker's side

/// Runs the worker: loads the model, then answers batches until stdin closes. Returns the
/// process's exit status.
pub fn serve(library: &Path, config: Option<&Path>, threads: u32, shm_fd: Option<i32>) -> i32 {
    let proto = match protocol_stdout() {
        Ok(f) => f,
        Err(e) => {
            eprintln!("shiftbench worker: cannot set up its output: {e}");
            return 2;
        }
    };
    let mut out = BufWriter::with_capacity(1 << 16, proto);
    let mut input = BufReader::with_capacity(1 << 16, std::io::stdin().lock());
    let mut model = match LoadedModel::load(library, config, threads) {
        Ok(m) => m,
        Err(e) => {
            let _ = write_frame(&mut out, b'L', &[format!("{e:#}").as_bytes()]);
            return 0;
        }
    };
    let card = serde_json::to_vec(&CardWire::new(&model.card, &model.plugin_name)).expect("card serialises");
    if write_frame(&mut out, b'C', &[&card]).is_err() {
        return 2;
    }
    let image_len = model.card.preprocess.image_len() as u64;
    let mut shm = shm_fd.map(SharedIn::new);
    loop {
        let (tag, len) = match read_head(&mut input) {
            Ok(Some(h)) => h,
            Ok(None) => return 0, // the harness is done
            Err(e) => {
                eprintln!("shiftbench worker: broken request stream: {e}");
                return 2;
            }
        };
        if tag == b'M' && len == 12 {
            let mut b = [0u8; 12];
            if input.read_exact(&mut b).is_err() {
                return 2;
            }
            let batch = u32::from_le_bytes(b[..4].try_into().expect("4 bytes")) as u64;
            let bytes = u64::from_le_bytes(b[4..].try_into().expect("8 bytes"));
            if bytes != batch * image_len * 4 || bytes > MAX_BATCH_FRAME {
                eprintln!("shiftbench worker: a batch of {batch} images cannot be {bytes} bytes");
                return 2;
            }
            let Some(shm) = shm.as_mut() else {
                eprintln!("shiftbench worker: a batch in shared memory, but no shared memory was given");
                return 2;
            };
            let images = match shm.get(bytes as usize) {
                Ok(v) => v,
                Err(e) => {
                    eprintln!("shiftbench worker: cannot read the batch from shared memory: {e}");
                    return 2;
                }
            };
            if answer(&mut model, &mut out, images, batch as usize).is_err() {
                return 2;
            }
            continue;
        }
        if tag != b'I' || !(4..=MAX_BATCH_FRAME).contains(&len) {
            eprintln!("shiftbench worker: unexpected request (tag {tag}, {len} bytes)");
            return 2;
        }
        let mut b = [0u8; 4];
        if input.read_exact(&mut b).is_err() {
            return 2;
        }
        let batch = u32::from_le_bytes(b) as u64;
        if len - 4 != batch * image_len * 4 {
            eprintln!("shiftbench worker: a batch of {batch} images cannot be {} bytes", len - 4);
            return 2;
        }
        let Ok(images) = read_f32s(&mut input, (batch * image_len) as usize) else { return 2 };
        if answer(&mut model, &mut out, &images, batch as usize).is_err() {
            return 2;
        }
    }
}

/// Scores one batch and writes the reply frame.
fn answer(model: &mut LoadedModel, out: &mut impl Write, images: &[f32], batch: usize) -> std::io::Result<()> {
    match model.infer(images, batch) {
        Ok(scores) => write_frame(out, b'S', &[bytemuck::cast_slice(&scores)]),
        Err(e) if e.downcast_ref::<ModelStopped>().is_some() => write_frame(out, b'F', &[format!("{e:#}").as_bytes()]),
        Err(e) => write_frame(out, b'E', &[format!("{e:#}").as_bytes()]),
    }
}

/// The worker's read-only view of the shared memory batches arrive in.
struct SharedIn {
    file: std::fs::File,
    map: Option<memmap2::Mmap>,
}

impl SharedIn {
    fn new(fd: i32) -> SharedIn {
        use std::os::fd::FromRawFd;
        // SAFETY: the harness passes this fd to this process for this purpose only; nothing
        // else in the worker owns it.
        SharedIn { file: unsafe { std::fs::File::from_raw_fd(fd) }, map: None }
    }

    /// The first `bytes` bytes as f32 (mapping the file again when the harness grew it).
    fn get(&mut self, bytes: usize) -> std::io::Result<&[f32]> {
        if self.map.as_ref().map_or(true, |m| m.len() < bytes) {
            let size = self.file.metadata()?.len();
            if size < bytes as u64 {
                return Err(std::io::Error::other(format!("the shared memory holds {size} bytes, the batch {bytes}")));
            }
            // SAFETY: the harness writes the file only between batches, never while the
            // worker reads it (it waits for this batch's answer first), and never shrinks it.
            self.map = Some(unsafe { memmap2::MmapOptions::new().len(size as usize).map(&self.file)? });
        }
        let map = self.map.as_ref().expect("mapped");
        bytemuck::try_cast_slice(&map[..bytes]).map_err(|e| std::io::Error::other(format!("misaligned shared memory: {e}")))
    }
}

/// The harness's side of the shared memory: a memfd that grows to the largest batch.
struct SharedOut {
    file: std::fs::File,
    map: Option<memmap2::MmapMut>,
}

impl SharedOut {
    /// A new, empty shared memory file, or why not (then batches use the pipe).
    #[cfg(target_os = "linux")]
    fn new() -> std::io::Result<SharedOut> {
        use std::os::fd::FromRawFd;
        // SAFETY: memfd_create with a valid C string; the new fd is owned by the File.
        let fd = unsafe { libc::memfd_create(c"shiftbench-batch".as_ptr(), libc::MFD_CLOEXEC) };
        if fd < 0 {
            return Err(std::io::Error::last_os_error());
        }
        Ok(SharedOut { file: unsafe { std::fs::File::from_raw_fd(fd) }, map: None })
    }

    #[cfg(not(target_os = "linux"))]
    fn new() -> std::io::Result<SharedOut> {
        Err(std::io::Error::other("shared memory batches are implemented for Linux only"))
    }

    /// The first `bytes` of the shared memory, for the next batch to be written into, growing
    /// it first when needed. Page-aligned.
    fn reserve(&mut self, bytes: usize) -> std::io::Result<&mut [u8]> {
        if self.map.as_ref().map_or(true, |m| m.len() < bytes) {
            let size = bytes.next_power_of_two().max(1 << 20);
            self.file.set_len(size as u64)?;
            // SAFETY: only this process writes the file, through this map, between batches; the
            // worker maps it read-only and reads it only while a batch is in flight (not now).
            self.map = Some(unsafe { memmap2::MmapOptions::new().len(size).map_mut(&self.file)? });
        }
        Ok(&mut self.map.as_mut().expect("mapped")[..bytes])
    }

    /// Copies `data` to the start of the shared memory, growing it first when needed.
    fn put(&mut self, data: &[u8]) -> std::io::Result<()> {
        self.reserve(data.len())?.copy_from_slice(data);
        Ok(())
    }
}

/// Moves the protocol off fd 1 (to a private duplicate) and points fd 1 at stderr, so whatever
/// a plugin prints cannot corrupt a frame. Also asks Linux to kill this worker if the harness dies.
#[cfg(unix)]
fn protocol_stdout() -> std::io::Result<std::fs::File> {
    use std::os::fd::FromRawFd;
    // SAFETY: plain fd syscalls on fds this process owns; the duplicate is owned by the File.
    unsafe {
        #[cfg(target_os = "linux")]
        libc::prctl(libc::PR_SET_PDEATHSIG, libc::SIGKILL as libc::c_ulong);
        let fd = libc::fcntl(1, libc::F_DUPFD_CLOEXEC, 3);
        if fd < 0 || libc::dup2(2, 1) < 0 {
            return Err(std::io::Error::last_os_error());
        }
        Ok(std::fs::File::from_raw_fd(fd))
    }
}

#[cfg(not(unix))]
fn protocol_stdout() -> std::io::Result<std::fs::File> {
    Err(std::io::Error::other("worker isolation needs a Unix system; use --in-process"))
}

// ---------------------------------------------------------------------------------------------
// The harness's side

#[derive(Default)]
struct WatchState {
    deadline: Option<Instant>,
    /// When the watchdog thread will next look (None: only when notified).
    wakes_at: Option<Instant>,
    fired: bool,
    stop: bool,
}

/// Kills the worker when a deadline passes.
struct Watchdog {
    shared: Arc<(Mutex<WatchState>, Condvar)>,
}

impl Watchdog {
    fn start(child: Arc<Mutex<Child>>) -> Watchdog {
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
    fn set(&self, deadline: Option<Instant>) {
        let (lock, cv) = &*self.shared;
        let mut st = lock.lock().unwrap_or_else(|e| e.into_inner());
        st.deadline = deadline;
        match (deadline, st.wakes_at) {
            (None, _) => {}
            (Some(d), Some(w)) if w <= d => {}
            _ => cv.notify_all(),
        }
    }

    fn fired(&self) -> bool {
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
struct StderrTail {
    lines: VecDeque<String>,
    eof: bool,
}

fn forward_stderr(pipe: std::process::ChildStderr) -> Arc<(Mutex<StderrTail>, Condvar)> {
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

/// A model running in a worker process.
pub struct WorkerModel {
    card: ModelCard,
    labels: Vec<String>,
    plugin_name: String,
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
        f.debug_struct("WorkerModel").field("name", &self.card.name).field("library", &self.library).finish()
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
    pub fn spawn_many(opts: &WorkerOptions, library: &Path, config: Option<&Path>, threads: u32, n: usize) -> Result<Vec<WorkerModel>> {
        let pending: Vec<PendingWorker> = (0..n).map(|_| Self::start(opts, library, config, threads)).collect::<Result<_>>()?;
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
            card: ModelCard {
                name: RString::new(),
                labels: RVec::new(),
                preprocess: PreprocessSpec::IMAGENET,
                max_batch: 0,
                scores: ScoreKind::Logits,
            },
            labels: vec![],
            plugin_name: library.display().to_string(),
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
                let wire: CardWire = serde_json::from_str(&json).map_err(|e| anyhow!("the worker for {} sent a malformed card: {e}", library.display()))?;
                w.plugin_name = wire.plugin_name.clone();
                w.card = wire.card()?;
                w.labels = validate_card(&w.card, &w.plugin_name)?;
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
        let who = if self.plugin_name == lib { format!("plugin {lib}") } else { format!("plugin {} ({lib})", self.plugin_name) };
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
                let n = batch * self.labels.len();
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

impl Scorer for WorkerModel {
    fn card(&self) -> &ModelCard {
        &self.card
    }

    fn labels(&self) -> &[String] {
        &self.labels
    }

    fn plugin_name(&self) -> &str {
        &self.plugin_name
    }

    fn infer(&mut self, input: &[f32], batch: usize) -> Result<Vec<f32>> {
        self.check_batch(batch, input.len())?;
        self.timed(batch, |w| w.exchange(input, batch))
    }

    /// The batch's input is normalised straight into the shared memory (no tensor is copied),
    /// when there is one.
    fn infer_filled(&mut self, batch: usize, len: usize, scratch: &mut Vec<f32>, fill: &mut dyn FnMut(&mut [f32])) -> Result<Vec<f32>> {
        self.check_batch(batch, len)?;
        match self.shm.as_mut().and_then(|m| m.reserve(len * 4).ok()) {
            Some(bytes) => {
                // Page-aligned, so it is a slice of f32.
                fill(bytemuck::cast_slice_mut(bytes));
                self.timed(batch, |w| w.send_shared(batch, len * 4).and_then(|()| w.receive(batch)))
            }
            None => self.infer(crate::plugin::filled(scratch, len, fill), batch),
        }
    }
}

impl WorkerModel {
    /// A stopped model answers nothing; a batch must be `batch` images of the card's size.
    fn check_batch(&self, batch: usize, len: usize) -> Result<()> {
        if let Some(why) = &self.stopped {
            return Err(ModelStopped(why.clone()).into());
        }
        let expect_in = batch * self.card.preprocess.image_len();
        if len != expect_in {
            bail!("internal error: batch of {batch} needs {expect_in} values, got {len}");
        }
        Ok(())
    }

    /// Runs one exchange under the batch timeout and says what its outcome means for the batch
    /// and the model.
    fn timed(&mut self, batch: usize, exchange: impl FnOnce(&mut Self) -> std::io::Result<Result<Vec<f32>, (bool, String)>>) -> Result<Vec<f32>> {
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

#[cfg(all(test, target_os = "linux"))]
mod tests {
    use super::*;
    use std::os::fd::AsRawFd;

    /// A batch put into the harness's shared memory is what the worker's side reads, also after
    /// the memory grew, through a separate descriptor (as the worker has its own).
    #[test]
    fn shared_memory_carries_batches_and_grows() {
        let mut out = SharedOut::new().expect("memfd");
        // SAFETY: dup of a live fd; the new fd is handed to SharedIn, which owns it.
        let fd = unsafe { libc::dup(out.file.as_raw_fd()) };
        assert!(fd >= 0);
        let mut inp = SharedIn::new(fd);
        for n in [10usize, 300_000, 5, 1_000_000] {
            let batch: Vec<f32> = (0..n).map(|i| i as f32 * 0.5 - 7.0).collect();
            out.put(bytemuck::cast_slice(&batch)).unwrap();
            assert_eq!(inp.get(n * 4).unwrap(), &batch[..]);
        }
        // Asking for more than the harness put there is an error, not a read past the end.
        assert!(inp.get(1 << 30).is_err());
    }
}
