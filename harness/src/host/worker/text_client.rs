//! The harness's side of a text-encoder worker: [`WorkerTextEncoder`], a [`TextBackend`] like
//! the in-process [`LoadedTextEncoder`](crate::host::text_plugin::LoadedTextEncoder). Texts go
//! over the pipe in `T` frames (they are small next to what the encoder does with them), raw
//! embeddings come back in `S` frames; the watchdog bounds each request by the batch timeout.
//! Any broken exchange becomes [`ModelStopped`] with one sentence naming the encoder.

use std::path::Path;
use std::process::Command;
use std::time::{Duration, Instant};

use anyhow::{anyhow, bail, Result};

use super::client::WorkerOptions;
use super::process::{WorkerProcess, WORKER_COMMAND};
use super::protocol::{read_f32s, read_head, read_text, write_frame};
use super::text_serve::encode_texts;
use crate::host::scorer::ModelStopped;
use crate::host::text_plugin::{EncoderInfo, TextBackend};

/// A text encoder running in a worker process.
pub struct WorkerTextEncoder {
    info: EncoderInfo,
    proc: WorkerProcess,
    batch_timeout: Duration,
    /// Why the worker is gone, once it is.
    stopped: Option<String>,
}

impl WorkerTextEncoder {
    /// Starts a worker for the text encoder of `library` (with its `encoder.yaml`) and waits, up
    /// to the load timeout, for the encoder's info.
    pub fn spawn(opts: &WorkerOptions, library: &Path, config: Option<&Path>, threads: u32) -> Result<Self> {
        let mut cmd = Command::new(&opts.exe);
        cmd.arg(WORKER_COMMAND)
            .arg("--text-encoder")
            .arg("--library")
            .arg(library)
            .arg("--threads")
            .arg(threads.to_string());
        if let Some(c) = config {
            cmd.arg("--config").arg(c);
        }
        let mut proc = WorkerProcess::spawn(cmd, &opts.exe, library)?;
        proc.watchdog.set(Some(Instant::now() + opts.load_timeout));
        let answer = read_head(&mut proc.stdout).and_then(|h| match h {
            Some((t @ (b'C' | b'L'), len)) => Ok((t, read_text(&mut proc.stdout, len)?)),
            Some((t, _)) => Err(std::io::Error::new(std::io::ErrorKind::InvalidData, format!("unexpected frame {t}"))),
            None => Err(std::io::ErrorKind::UnexpectedEof.into()),
        });
        proc.watchdog.set(None);
        let info = match answer {
            Ok((b'C', json)) => serde_json::from_str::<EncoderInfo>(&json)
                .map_err(|e| anyhow!("the worker for {} sent a malformed text encoder info: {e}", library.display()))?
                .checked()?,
            Ok((_, err)) => bail!(err),
            Err(e) => {
                let who = format!("plugin {}", library.display());
                let limit = format!("{} s (--load-timeout)", opts.load_timeout.as_secs_f64());
                bail!("{}", proc.failure(&who, "while loading its text encoder", &limit, &e))
            }
        };
        Ok(WorkerTextEncoder { info, proc, batch_timeout: opts.batch_timeout, stopped: None })
    }

    fn exchange(&mut self, texts: &[&str]) -> std::io::Result<Result<Vec<f32>, (bool, String)>> {
        let stdin = self.proc.stdin.as_mut().ok_or(std::io::ErrorKind::BrokenPipe)?;
        write_frame(stdin, b'T', &[&encode_texts(texts)])?;
        let (tag, len) = read_head(&mut self.proc.stdout)?.ok_or(std::io::ErrorKind::UnexpectedEof)?;
        match tag {
            b'S' => {
                if len % 4 != 0 || len > (texts.len() * self.info.dim * 4) as u64 {
                    return Err(std::io::Error::new(
                        std::io::ErrorKind::InvalidData,
                        format!(
                            "a {len}-byte reply to {} texts, expected {} bytes",
                            texts.len(),
                            texts.len() * self.info.dim * 4
                        ),
                    ));
                }
                // A short reply is read whole and refused by the caller's length check.
                Ok(Ok(read_f32s(&mut self.proc.stdout, (len / 4) as usize)?))
            }
            b'E' => Ok(Err((false, read_text(&mut self.proc.stdout, len)?))),
            b'F' => Ok(Err((true, read_text(&mut self.proc.stdout, len)?))),
            t => Err(std::io::Error::new(std::io::ErrorKind::InvalidData, format!("an unexpected reply (tag {t})"))),
        }
    }
}

impl TextBackend for WorkerTextEncoder {
    fn info(&self) -> &EncoderInfo {
        &self.info
    }

    fn encode_raw(&mut self, texts: &[&str]) -> Result<Vec<f32>> {
        if let Some(why) = &self.stopped {
            return Err(ModelStopped(why.clone()).into());
        }
        self.proc.watchdog.set(Some(Instant::now() + self.batch_timeout));
        let r = self.exchange(texts);
        self.proc.watchdog.set(None);
        match r {
            Ok(Ok(v)) => Ok(v),
            Ok(Err((false, e))) => Err(anyhow!(e)),
            Ok(Err((true, e))) => {
                self.stopped = Some(e.clone());
                Err(ModelStopped(e).into())
            }
            Err(io) => {
                let limit = format!("{} s (--batch-timeout)", self.batch_timeout.as_secs_f64());
                let during = format!("while encoding a batch of {} texts", texts.len());
                let why = self.proc.failure(&self.info.who(), &during, &limit, &io);
                self.stopped = Some(why.clone());
                Err(ModelStopped(why).into())
            }
        }
    }
}
