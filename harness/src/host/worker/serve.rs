//! The worker's side: load the model in this process, send its card, answer batches until stdin
//! closes. Runs as `shiftbench __worker`.

use std::io::{BufReader, BufWriter, Read, Write};
use std::path::Path;

use super::protocol::{read_f32s, read_head, write_frame, CardWire, MAX_BATCH_FRAME};
use super::shm::SharedIn;
use crate::host::plugin::LoadedModel;
use crate::host::scorer::{ModelStopped, Output, Scorer};

/// Why a worker stopped before its harness was done with it (the harness sees a broken pipe and
/// stops the model; the CLI's `worker` command prints the reason, if any, and exits with 2).
#[derive(Debug, thiserror::Error)]
pub enum WorkerExit {
    /// A request it cannot answer, said in a sentence.
    #[error("shiftbench worker: {0}")]
    Said(String),
    /// Its pipes broke: nobody is listening.
    #[error("shiftbench worker: its pipes broke")]
    Quiet,
}

/// Runs the worker: loads the model, then answers batches until stdin closes (`Ok`); a load
/// failure is sent to the harness, which reports it. Anything else that ends it is a
/// [`WorkerExit`].
pub fn serve(library: &Path, config: Option<&Path>, threads: u32, shm_fd: Option<i32>) -> Result<(), WorkerExit> {
    let proto = worker_stdio()?;
    let mut out = BufWriter::with_capacity(1 << 16, proto);
    let mut input = BufReader::with_capacity(1 << 16, std::io::stdin().lock());
    let mut model = match LoadedModel::load(library, config, threads) {
        Ok(m) => m,
        Err(e) => {
            let _ = write_frame(&mut out, b'L', &[format!("{e:#}").as_bytes()]);
            return Ok(());
        }
    };
    let card =
        serde_json::to_vec(&CardWire::new(&model.state.card, &model.state.plugin_name, model.state.embedding_len))
            .expect("card serialises");
    if write_frame(&mut out, b'C', &[&card]).is_err() {
        return Err(WorkerExit::Quiet);
    }
    let image_len = model.state.card.preprocess.image_len() as u64;
    let mut shm = shm_fd.map(SharedIn::new);
    loop {
        let (tag, len) = match read_head(&mut input) {
            Ok(Some(h)) => h,
            Ok(None) => return Ok(()), // the harness is done
            Err(e) => {
                return Err(WorkerExit::Said(format!("broken request stream: {e}")));
            }
        };
        if tag == b'O' && len == 1 {
            let mut b = [0u8; 1];
            if input.read_exact(&mut b).is_err() {
                return Err(WorkerExit::Quiet);
            }
            let output = match b[0] {
                0 => Output::Scores,
                1 => Output::Embedding,
                other => {
                    return Err(WorkerExit::Said(format!("unknown output {other}")));
                }
            };
            // The harness asks only for what the card offers: a refusal is a broken protocol.
            if let Err(e) = model.set_output(output) {
                return Err(WorkerExit::Said(format!("{e:#}")));
            }
            continue;
        }
        if tag == b'M' && len == 12 {
            let mut b = [0u8; 12];
            if input.read_exact(&mut b).is_err() {
                return Err(WorkerExit::Quiet);
            }
            let batch = u32::from_le_bytes(b[..4].try_into().expect("4 bytes")) as u64;
            let bytes = u64::from_le_bytes(b[4..].try_into().expect("8 bytes"));
            if bytes != batch * image_len * 4 || bytes > MAX_BATCH_FRAME {
                return Err(WorkerExit::Said(format!("a batch of {batch} images cannot be {bytes} bytes")));
            }
            let Some(shm) = shm.as_mut() else {
                return Err(WorkerExit::Said("a batch in shared memory, but no shared memory was given".into()));
            };
            let images = match shm.get(bytes as usize) {
                Ok(v) => v,
                Err(e) => {
                    return Err(WorkerExit::Said(format!("cannot read the batch from shared memory: {e}")));
                }
            };
            if answer(&mut model, &mut out, images, batch as usize).is_err() {
                return Err(WorkerExit::Quiet);
            }
            continue;
        }
        if tag != b'I' || !(4..=MAX_BATCH_FRAME).contains(&len) {
            return Err(WorkerExit::Said(format!("unexpected request (tag {tag}, {len} bytes)")));
        }
        let mut b = [0u8; 4];
        if input.read_exact(&mut b).is_err() {
            return Err(WorkerExit::Quiet);
        }
        let batch = u32::from_le_bytes(b) as u64;
        if len - 4 != batch * image_len * 4 {
            return Err(WorkerExit::Said(format!("a batch of {batch} images cannot be {} bytes", len - 4)));
        }
        let Ok(images) = read_f32s(&mut input, (batch * image_len) as usize) else { return Err(WorkerExit::Quiet) };
        if answer(&mut model, &mut out, &images, batch as usize).is_err() {
            return Err(WorkerExit::Quiet);
        }
    }
}

/// What every worker does first: leave SIGTERM and SIGINT to the harness, and move the protocol
/// off fd 1 ([`protocol_stdout`]); returns the protocol's output.
pub(crate) fn worker_stdio() -> Result<std::fs::File, WorkerExit> {
    // The harness owns this process's lifetime (it closes stdin, or kills it): a SIGTERM or SIGINT
    // sent to every process of a job (Slurm's scancel, a time limit) is the harness's to handle,
    // finishing the batch in flight, not a crash of the model.
    #[cfg(unix)]
    // SAFETY: setting a signal's disposition to SIG_IGN before any other thread starts.
    unsafe {
        libc::signal(libc::SIGTERM, libc::SIG_IGN);
        libc::signal(libc::SIGINT, libc::SIG_IGN);
    }
    protocol_stdout().map_err(|e| WorkerExit::Said(format!("cannot set up its output: {e}")))
}

/// Scores one batch and writes the reply frame.
fn answer(model: &mut LoadedModel, out: &mut impl Write, images: &[f32], batch: usize) -> std::io::Result<()> {
    match model.infer(images, batch) {
        Ok(scores) => write_frame(out, b'S', &[bytemuck::cast_slice(&scores)]),
        Err(e) if e.downcast_ref::<ModelStopped>().is_some() => write_frame(out, b'F', &[format!("{e:#}").as_bytes()]),
        Err(e) => write_frame(out, b'E', &[format!("{e:#}").as_bytes()]),
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
