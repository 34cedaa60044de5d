//! Times shiftbench's text-encoding stage: the encoder `--encoder` names, opened through the host
//! (`shiftbench::host::text::open_text_encoder`, in a worker process unless `--in-process`),
//! encoding the texts of a file (one per line) in one call, as the LAIONet builder calls it.
//! The time covers everything after the encoder is open: tokenizing (in the plugin), ONNX
//! Runtime, the worker pipe and the host's checks and normalisation. Prints one JSON line.
//!
//!     cargo run --release --example text_encode -- ENCODER TEXTS.txt [--threads N] [--repeat R] [--in-process]
//!
//! Used by bench/text_encode.sh.

use std::time::{Duration, Instant};

use shiftbench::host::text::{open_text_encoder, TextEncoderOptions};
use shiftbench::host::worker::{Isolation, WorkerOptions};

fn main() {
    let args: Vec<String> = std::env::args().skip(1).collect();
    if args.len() < 2 {
        eprintln!("usage: text_encode ENCODER TEXTS.txt [--threads N] [--repeat R] [--in-process]");
        std::process::exit(2);
    }
    let flag = |name: &str| args.iter().position(|a| a == name).and_then(|i| args.get(i + 1)?.parse::<usize>().ok());
    let threads = flag("--threads").unwrap_or(0);
    let repeat = flag("--repeat").unwrap_or(1).max(1);
    let isolation = if args.iter().any(|a| a == "--in-process") {
        Isolation::InProcess
    } else {
        // The worker is the shiftbench binary built beside this example (target/release).
        let exe = std::env::current_exe().unwrap();
        let bin = exe.parent().and_then(|d| d.parent()).map(|d| d.join("shiftbench")).unwrap();
        Isolation::Worker(WorkerOptions {
            exe: bin,
            batch_timeout: Duration::from_secs(3600),
            load_timeout: Duration::from_secs(600),
        })
    };
    let text = std::fs::read_to_string(&args[1]).unwrap_or_else(|e| panic!("cannot read {}: {e}", args[1]));
    let texts: Vec<&str> = text.lines().collect();
    let t0 = Instant::now();
    let mut e =
        open_text_encoder(&args[0], &TextEncoderOptions { threads, isolation }).unwrap_or_else(|e| panic!("{e:#}"));
    let open = t0.elapsed().as_secs_f64();
    let mut times = vec![];
    let mut checksum = 0f64;
    for _ in 0..repeat {
        let t = Instant::now();
        let v = e.encode(&texts).unwrap_or_else(|e| panic!("{e:#}"));
        times.push(t.elapsed().as_secs_f64());
        checksum = v.iter().map(|&x| x as f64).sum();
    }
    times.sort_by(f64::total_cmp);
    let median = times[times.len() / 2];
    println!(
        "{{\"encoder\": {:?}, \"texts\": {}, \"open_seconds\": {open:.3}, \"encode_seconds\": {median:.3}, \"runs\": {times:?}, \"texts_per_second\": {:.1}, \"checksum\": {checksum:.4}}}",
        e.name(),
        texts.len(),
        texts.len() as f64 / median
    );
}
