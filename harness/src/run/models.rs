//! The models of a session: each `--model` opened as its copies (worker processes or in this
//! process), under its YAML's name, and how many copies and threads each gets.

use anyhow::{bail, Result};

use crate::host::model::ModelRef;
use crate::host::scorer::Scorer;
use crate::host::worker::open_scorers;
use crate::host::worker::Isolation;
use crate::results::provenance::ModelInfo;
use crate::run::options::{requested_batch, EvalOptions};

/// How the copies of a model are opened.
#[derive(Debug, Clone, Default)]
pub struct ModelOptions {
    /// Threads each copy may use (0: one core's share per copy when a model runs as several
    /// copies, else the plugin decides).
    pub model_threads: u32,
    /// Copies of each model side by side (`--replicas`); `None`: the model YAML's `replicas:`,
    /// else [`auto_replicas`].
    pub replicas: Option<u32>,
    /// In a worker process per copy (the CLI's default) or in this process.
    pub isolation: Isolation,
}

/// Most copies [`auto_replicas`] makes of one model.
pub const AUTO_MAX_REPLICAS: u32 = 4;

/// [`auto_replicas`] keeps the model files of all copies of one model within this many bytes.
pub const AUTO_REPLICA_BYTES: u64 = 2 << 30;

/// How many copies of a model run side by side when neither `--replicas` nor the model YAML's
/// `replicas:` says: one per core (at most [`AUTO_MAX_REPLICAS`], and no more than fit
/// [`AUTO_REPLICA_BYTES`] of model files) for a model YAML that runs on the CPU, so that each
/// copy computes on one core without waiting on the others (a batch-1 model keeps every core
/// busy, and nobody spins; a Python model's files are its code and the files its `args:` name);
/// 1 for a model YAML whose `options.device` (a Python model's `device:`) is not `cpu`, and for
/// plugins given without a model YAML (a plugin of one's own may not expect to be loaded twice).
pub fn auto_replicas(config: Option<&shiftbench_model_config::ModelConfig>, cores: u32) -> u32 {
    let Some(cfg) = config else { return 1 };
    let on_cpu = match cfg.options.get("device") {
        None => true,
        Some(v) => v.as_str().is_some_and(|d| d.eq_ignore_ascii_case("cpu")),
    } && cfg.python.as_ref().is_none_or(|p| p.device == "cpu");
    if !on_cpu {
        return 1;
    }
    let mut r = cores.clamp(1, AUTO_MAX_REPLICAS);
    // A Python model's weights are the files its `args:` name, beside its code.
    let arg_files = cfg.python.as_ref().map(|p| p.arg_paths()).unwrap_or_default();
    let files = cfg.model_file.iter().cloned().chain(arg_files.into_iter().map(|(_, f)| f));
    let size: u64 = files.filter_map(|f| std::fs::metadata(f).ok()).filter(|m| m.is_file()).map(|m| m.len()).sum();
    if let Some(fit) = AUTO_REPLICA_BYTES.checked_div(size) {
        r = r.min(fit.clamp(1, u32::MAX as u64) as u32);
    }
    r
}

/// Copies and threads per copy for a `--model`: `opts.replicas`, else the model YAML's
/// `replicas:`, else [`auto_replicas`]; threads as `opts.model_threads` says, else each copy's
/// share of the cores when there are several copies, else 0 (the plugin decides).
pub fn replicas_and_threads(model: &ModelRef, spec: &ModelOptions) -> (u32, u32) {
    let cores = std::thread::available_parallelism().map(|n| n.get() as u32).unwrap_or(1);
    let config = model.config.as_ref();
    let replicas =
        spec.replicas.or(config.and_then(|c| c.replicas)).unwrap_or_else(|| auto_replicas(config, cores)).max(1);
    let threads = match spec.model_threads {
        0 if replicas > 1 => (cores / replicas).max(1),
        t => t,
    };
    (replicas, threads)
}

/// A model's copies, all ready (the first is the one reported on).
pub type Replicas = Vec<Box<dyn Scorer + Send>>;

/// Opens `model` as `spec.isolation` says, under its model YAML's `name:` if it sets one, as
/// many times as [`replicas_and_threads`] says (worker copies load in parallel). Returns the
/// copies and the threads each was asked to use.
pub(crate) fn open_copies(model: &ModelRef, spec: &ModelOptions) -> Result<(Replicas, u32)> {
    let (replicas, threads) = replicas_and_threads(model, spec);
    let copies = open_scorers(model, threads, &spec.isolation, replicas as usize)?;
    let (card0, labels0) = (copies[0].card().clone(), copies[0].labels().to_vec());
    if copies.iter().any(|c| c.card() != &card0 || c.labels() != labels0) {
        bail!("two copies of model {} describe themselves differently; run it with --replicas 1", model.arg);
    }
    Ok((copies, threads))
}

/// What a result records of a model opened as `copies`, each with `threads`.
pub(crate) fn model_info(model: &ModelRef, copies: &Replicas, threads: u32, eval: &EvalOptions) -> ModelInfo {
    let first = &copies[0];
    let batch = first.batch_size(requested_batch(eval.batch, copies.len()));
    let mut mi = ModelInfo::new(model, first.plugin_name(), first.card(), first.labels(), batch);
    (mi.replicas, mi.threads) = (Some(copies.len()), Some(threads));
    mi
}

/// Closes every copy of every model at the same time: a worker takes tens of milliseconds to
/// exit (its runtime's teardown), which one after the other would add up at the end of a run.
pub(crate) fn close_all(models: Vec<Replicas>) {
    std::thread::scope(|s| {
        for m in models.into_iter().flatten() {
            s.spawn(move || drop(m));
        }
    });
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::path::{Path, PathBuf};

    fn config(dir: &Path, yaml: &str, model_bytes: u64) -> shiftbench_model_config::ModelConfig {
        std::fs::write(dir.join("m.onnx"), vec![0u8; model_bytes as usize]).unwrap();
        let p = dir.join("m.yaml");
        std::fs::write(&p, format!("plugin: onnx\nmodel: m.onnx\n{yaml}")).unwrap();
        shiftbench_model_config::ModelConfig::load(&p).unwrap()
    }

    #[test]
    fn auto_replicas_one_per_core_on_the_cpu_within_limits() {
        let d = tempfile::tempdir().unwrap();
        let small = config(d.path(), "", 1000);
        assert_eq!(auto_replicas(Some(&small), 2), 2);
        assert_eq!(auto_replicas(Some(&small), 1), 1);
        assert_eq!(auto_replicas(Some(&small), 64), AUTO_MAX_REPLICAS);
        assert_eq!(auto_replicas(Some(&config(d.path(), "options: {device: cpu}\n", 1000)), 8), 4);
        // A GPU model runs once; so does a plugin given without a model YAML.
        assert_eq!(auto_replicas(Some(&config(d.path(), "options: {device: cuda}\n", 1000)), 8), 1);
        assert_eq!(auto_replicas(None, 8), 1);
        // Copies of a big model stay within AUTO_REPLICA_BYTES of model files.
        let big = config(d.path(), "", AUTO_REPLICA_BYTES / 3 + 1);
        assert_eq!(auto_replicas(Some(&big), 8), 2);
        // A Python model: its device, and the weights its args name.
        std::fs::write(d.path().join("w.bin"), vec![0u8; (AUTO_REPLICA_BYTES / 3 + 1) as usize]).unwrap();
        let py = |extra: &str| {
            std::fs::write(d.path().join("p.yaml"), format!("plugin: python\npython: p.py\n{extra}")).unwrap();
            shiftbench_model_config::ModelConfig::load(&d.path().join("p.yaml")).unwrap()
        };
        assert_eq!(auto_replicas(Some(&py("")), 8), 4);
        assert_eq!(auto_replicas(Some(&py("args: {weights: w.bin}\n")), 8), 2);
        assert_eq!(auto_replicas(Some(&py("device: cuda\n")), 8), 1);
    }

    #[test]
    fn replicas_and_threads_follow_the_flag_then_the_yaml() {
        let d = tempfile::tempdir().unwrap();
        let model = ModelRef::new("m.yaml", PathBuf::new(), Some(config(d.path(), "replicas: 3\n", 10)));
        let cores = std::thread::available_parallelism().map(|n| n.get() as u32).unwrap_or(1);
        let spec = ModelOptions::default();
        assert_eq!(replicas_and_threads(&model, &spec), (3, (cores / 3).max(1)));
        let spec = ModelOptions { replicas: Some(1), ..ModelOptions::default() };
        assert_eq!(replicas_and_threads(&model, &spec), (1, 0), "one copy: the plugin picks its threads");
        let spec = ModelOptions { replicas: Some(2), model_threads: 5, ..ModelOptions::default() };
        assert_eq!(replicas_and_threads(&model, &spec), (2, 5));
        // replicas: 0 in a model YAML is refused when the YAML is read.
        std::fs::write(d.path().join("z.yaml"), "plugin: onnx\nmodel: m.onnx\nreplicas: 0\n").unwrap();
        let e = shiftbench_model_config::ModelConfig::load(&d.path().join("z.yaml")).unwrap_err().to_string();
        assert!(e.contains("replicas is 0"), "{e}");
    }
}
