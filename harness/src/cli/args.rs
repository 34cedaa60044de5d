//! The command line's grammar: every subcommand and flag (clap derive). `main.rs` acts on them.

use std::path::PathBuf;
use std::str::FromStr;

use anyhow::{bail, Result};
use clap::{Args, Parser, Subcommand};
use shiftbench::host::worker::IsolationArgs;
use shiftbench::report::compare::Tolerance;
use shiftbench::report::history::HistoryFormat;
use shiftbench::report::sinks::Format;
use shiftbench::report::sweep::SweepFormat;
use shiftbench::report::FormatSet;
use shiftbench::results::shard::Shard;
use shiftbench::run::options::Argmax;
use shiftbench::run::score::ScoreSpec;
use shiftbench::EvalOptions;

#[derive(Parser)]
#[command(
    name = "shiftbench",
    version,
    about = "How ImageNet classifiers hold up when ImageNet is swapped for LAIONet"
)]
pub(crate) struct Cli {
    #[command(subcommand)]
    pub(crate) cmd: Cmd,
}

#[derive(Args, Clone)]
pub(crate) struct Perf {
    /// Images per model call (capped by the model's own limit) [default: 32 for a model running
    /// as one copy, 8 per copy for a model running as several].
    #[arg(long, value_parser = positive)]
    pub(crate) batch: Option<usize>,
    /// Decode/preprocess threads (default: all cores).
    #[arg(long)]
    pub(crate) threads: Option<usize>,
    /// Threads each copy of a model may use for inference (default: its share of the cores when
    /// a model runs as several copies, else the plugin decides).
    #[arg(long)]
    pub(crate) model_threads: Option<u32>,
    /// Copies of each model to run side by side, each scoring its own batches (default: the
    /// model YAML's `replicas:`, else one per core, up to 4, for a model YAML on the CPU, else 1).
    #[arg(long, value_parser = clap::value_parser!(u32).range(1..=256))]
    pub(crate) replicas: Option<u32>,
}

/// How results are reported: `F` is the formats the command's report has (a history's have no
/// JUnit, so `--format junit` is refused as the command line is parsed).
#[derive(Args, Clone)]
pub(crate) struct Report<F: FormatSet + FromStr + Send + Sync = Format>
where
    <F as FromStr>::Err: std::fmt::Display,
{
    /// What to print: table, markdown, csv, json or junit.
    #[arg(long, default_value = "table", value_parser = parse_format::<F>)]
    pub(crate) format: F,
    /// Also write the report in every format, the plots and report.html (one self-contained
    /// page) into this folder.
    #[arg(long)]
    pub(crate) report_dir: Option<PathBuf>,
}

/// When a change counts as a regression.
#[derive(Args, Clone)]
pub(crate) struct Tol {
    /// A drop must exceed this many standard errors of the difference...
    #[arg(long, default_value_t = 3.0)]
    pub(crate) tolerance_se: f64,
    /// ...and this absolute amount (a fraction: 0.005 is half a percentage point).
    #[arg(long, default_value_t = 0.005)]
    pub(crate) min_drop: f64,
}

impl Tol {
    pub(crate) fn get(&self) -> Result<Tolerance> {
        if !(self.tolerance_se >= 0.0 && self.min_drop >= 0.0) {
            bail!("--tolerance-se and --min-drop must be non-negative numbers");
        }
        Ok(Tolerance { se: self.tolerance_se, min_drop: self.min_drop })
    }
}

impl ScoreArgs {
    pub(crate) fn spec(&self) -> ScoreSpec {
        ScoreSpec {
            logs: self.logs.clone(),
            suite: self.suite.clone(),
            results: self.results.clone(),
            labels: self.labels.clone(),
            label_id_column: self.label_id_column.clone(),
            id_column: self.id_column.clone(),
            wnid_column: self.wnid_column.clone(),
            models: self.models.clone(),
            classes: self.classes.clone(),
            classes_where: self.classes_where.clone(),
            weights_table: self.weights_table.clone(),
            weight_column: self.weight_column.clone(),
        }
    }
}

#[derive(Subcommand)]
pub(crate) enum Cmd {
    /// Generate two synthetic suites (ImageNet-like, LAIONet-like), run the example plugin on
    /// both and print the table. Nothing is downloaded.
    Demo {
        /// Where the suites, logs and result go.
        #[arg(long, default_value = "shiftbench-demo")]
        out: PathBuf,
        /// The model (default: the example plugin).
        #[arg(long, default_value = "example")]
        model: String,
        #[command(flatten)]
        perf: Perf,
        #[command(flatten)]
        isolate: IsolationArgs,
    },
    /// Evaluate models on suites: prints the tables, writes predictions logs and result.json.
    /// All models go through each suite together (each image decoded once). An interrupted run
    /// resumes from its logs when run again.
    Run {
        /// A run plan (YAML: models, suites, out, batch, threads, ...); flags override it and
        /// --model/--suite add to its lists.
        #[arg(long)]
        plan: Option<PathBuf>,
        /// Suite YAML files (repeat for several; the first is the reference for the drop).
        #[arg(long = "suite")]
        suites: Vec<PathBuf>,
        /// Models: a model YAML, a plugin library or a plugin name (repeat for several).
        #[arg(long = "model")]
        models: Vec<String>,
        /// Output folder [default: shiftbench-out].
        #[arg(long)]
        out: Option<PathBuf>,
        /// Replace existing predictions logs instead of resuming them.
        #[arg(long)]
        fresh: bool,
        /// Exit non-zero if any sample failed or is missing, naming them.
        #[arg(long)]
        strict: bool,
        /// Evaluate only shard i of N (0-based; by a stable hash of each sample id). Each shard
        /// writes its own logs and result; `shiftbench merge` combines them.
        #[arg(long)]
        shard: Option<Shard>,
        /// Compare with this stored result (exit 1 on a regression).
        #[arg(long)]
        baseline: Option<PathBuf>,
        #[command(flatten)]
        tol: Tol,
        #[command(flatten)]
        report: Report,
        /// Order models by a column of the summary table: a suite name (its top-1 equal-wt),
        /// SUITE:laion, drop, drop:laion, drop:SUITE, er (effective robustness), er:laion,
        /// er:SUITE, model, or a column header; append :asc or :desc to choose the direction.
        /// Every report of the run follows this order: the terminal, each file of --report-dir
        /// and report.html.
        #[arg(long)]
        sort: Option<String>,
        /// Which labels predictions are taken over: auto (the suite's classes for models whose
        /// labels are not all ImageNet-1k classes, e.g. 21k/22k models; all labels otherwise),
        /// suite (always the suite's classes) or all [default: auto].
        #[arg(long)]
        argmax: Option<Argmax>,
        #[command(flatten)]
        perf: Perf,
        #[command(flatten)]
        isolate: IsolationArgs,
    },
    /// Compare a new result with a baseline, per model, suite and metric. Exit status: 0 no
    /// regression, 1 regression, 2 error.
    Compare {
        /// The baseline result (a result.json, or the folder holding it).
        baseline: PathBuf,
        /// The new result.
        new: PathBuf,
        #[command(flatten)]
        tol: Tol,
        #[command(flatten)]
        report: Report,
    },
    /// Follow a series of runs (oldest first): per model and suite, the trend of top-1 recall and
    /// each run's verdict against the run before it (paired where the logs allow); names the run
    /// where a model first regressed. Exit status: 0 the newest run did not regress, 1 it did,
    /// 2 error.
    History {
        /// Run folders (or result files), oldest first.
        #[arg(required = true)]
        runs: Vec<PathBuf>,
        #[command(flatten)]
        tol: Tol,
        #[command(flatten)]
        report: Report<HistoryFormat>,
    },
    /// Draw SVG plots of a result: ImageNet vs LAIONet recall per model (the paper's Figure 1),
    /// equal- vs LAION-weighted recall, and per-class recall against LAION frequency.
    Plot {
        /// The result (a result.json, or the folder holding it).
        result: PathBuf,
        /// Where the SVG files go.
        #[arg(long, default_value = "plots")]
        out: PathBuf,
        /// The suite on the x axis of the shift plots (default: the result's first suite).
        #[arg(long)]
        x_suite: Option<String>,
        /// The suite on the y axis (default: the second).
        #[arg(long)]
        y_suite: Option<String>,
        /// Plot top-5 recall instead of top-1.
        #[arg(long)]
        top5: bool,
        /// Colour and group the models of the shift plots by this tag of their model YAMLs
        /// (`tags:`, e.g. pretraining), with an effective-robustness fit per group.
        #[arg(long, value_name = "TAG")]
        group_by: Option<String>,
    },
    /// Merge the predictions logs of shards (`run --shard i/N`) into the result of the unsharded
    /// run. Inputs: output folders, logs (.jsonl) or shard results (.json).
    Merge {
        #[arg(required = true)]
        inputs: Vec<PathBuf>,
        /// Where result.json goes (default: the input folder, when there is one).
        #[arg(long)]
        out: Option<PathBuf>,
        /// Take class weights from these suites instead of the shards' result files.
        #[arg(long = "suite")]
        suites: Vec<PathBuf>,
        /// Merge even when some shards are missing.
        #[arg(long)]
        allow_partial: bool,
        #[command(flatten)]
        report: Report,
    },
    /// Check a suite's images against the sha256 checksums it pins (`checksums:` or a
    /// checksum column); exits non-zero on a mismatch or a missing image. --write makes a
    /// checksum file (sha256sum format, by sample id) to pin.
    Verify {
        #[arg(long = "suite", required = true)]
        suites: Vec<PathBuf>,
        /// Write the checksums of every readable image to this file instead of verifying.
        #[arg(long)]
        write: Option<PathBuf>,
        /// Reading/hashing threads (default: all cores).
        #[arg(long)]
        threads: Option<usize>,
    },
    /// Recompute metrics from predictions logs, or from per-sample results stored elsewhere
    /// (such as the LAIONet paper's ILSVRC2012_val.parquet).
    Score(ScoreArgs),
    /// Re-score predictions logs of a LAIONet suite at a range of similarity thresholds, without
    /// running the models again (the paper's threshold analysis).
    ///
    /// Per threshold: the samples, classes and recall ± se, equal- and LAION-weighted. Make the
    /// logs once under a loose threshold (a copy of the suite with a low min_similarity); at each
    /// threshold the suite is loaded as its YAML says with only min_similarity changed, so its
    /// weights follow. A threshold's row equals `score --log LOG --suite S` with S at it.
    Sweep(SweepArgs),
    /// The paper's diagnosis: how alike a model finds the images within each class. Per suite
    /// and class, up to --per-class images (a seeded, stable choice) are embedded by the model
    /// (its `embedding:`), and the mean cosine similarity over all pairs is taken, with its
    /// standard deviation and standard error. With two suites or more, each is compared with the
    /// first class by class (difference with a 95% interval; the share of classes significantly
    /// less and more alike), with a histogram; with --result, each class's recall change against
    /// its similarity change. Writes similarity.csv, similarity.json, differences.csv and SVGs
    /// into --out; an interrupted run resumes from its embeddings logs when run again.
    Similarity {
        /// Suite YAML files (repeat; the first is the reference the others are compared with).
        #[arg(long = "suite", required = true)]
        suites: Vec<PathBuf>,
        /// The model: a model YAML with `embedding:`, a plugin library or a plugin name.
        #[arg(long)]
        model: String,
        /// Output folder.
        #[arg(long, default_value = "shiftbench-similarity")]
        out: PathBuf,
        /// Most images per class (the paper: 100).
        #[arg(long, default_value_t = shiftbench::run::similarity::DEFAULT_PER_CLASS)]
        per_class: usize,
        /// Seed of the choice of images within each class.
        #[arg(long, default_value_t = 0)]
        seed: u64,
        /// Classes with fewer images (after failures) are listed and skipped (at least 3).
        #[arg(long, default_value_t = shiftbench::run::similarity::DEFAULT_MIN_PER_CLASS)]
        min_per_class: usize,
        /// A run's result (result.json or its folder) of the same model on the same suites: plot
        /// each class's recall change against its similarity change.
        #[arg(long)]
        result: Option<PathBuf>,
        /// Replace existing embeddings logs instead of resuming them.
        #[arg(long)]
        fresh: bool,
        #[command(flatten)]
        perf: Perf,
        #[command(flatten)]
        isolate: IsolationArgs,
    },
    /// Make LAIONet from LAION's captions (`shiftbench laionet build`).
    Laionet {
        #[command(subcommand)]
        cmd: crate::laionet::LaionetCmd,
    },
    /// Look at a model before running it: what its plugin reads from the model file and the card
    /// the harness will use (`show`), or a model YAML to start from for a model file (`init`).
    Model {
        #[command(subcommand)]
        cmd: ModelCmd,
    },
    /// Internal: runs one model for a `run` in a separate process (see harness/src/worker.rs).
    #[command(name = "__worker", hide = true)]
    Worker {
        #[arg(long)]
        library: PathBuf,
        #[arg(long)]
        config: Option<PathBuf>,
        #[arg(long, default_value_t = 0)]
        threads: u32,
        /// The inherited shared-memory file batches arrive in.
        #[arg(long)]
        shm_fd: Option<i32>,
        /// Run the plugin's text encoder (`--config`: its encoder.yaml) instead of its model.
        #[arg(long)]
        text_encoder: bool,
    },
}

#[derive(Subcommand)]
pub(crate) enum ModelCmd {
    /// Write a commented model YAML for a model file (.onnx, .pt, .py) holding the card shiftbench
    /// would assume for it (input size and labels read from the model, torchvision's
    /// preprocessing), to adjust and keep.
    Init {
        /// The model file.
        file: String,
        /// Where the YAML goes (default: print it); a file there is kept unless --force.
        #[arg(long)]
        out: Option<PathBuf>,
        /// Overwrite the --out file if it exists.
        #[arg(long)]
        force: bool,
    },
    /// Print what the plugin reads from the model (inputs, outputs, element types, batch) and
    /// the card the harness will use. FILE: a model YAML, an .onnx, a .pt or a .py file.
    Show {
        /// The model: a model YAML, a model file or a plugin.
        file: String,
    },
}

#[derive(Args)]
pub(crate) struct ScoreArgs {
    /// Predictions logs written by `shiftbench run` (logs of shards of one run are merged).
    #[arg(long = "log")]
    pub(crate) logs: Vec<PathBuf>,
    /// With --log: re-score the logs under this suite: its samples, labels and class weights.
    /// Logged samples the suite excludes are left out, the suite's samples the logs lack count
    /// as missing; so a log made under a loose LAIONet threshold, re-scored with a suite at 0.82,
    /// gives what a run at 0.82 gives. Without it: the logs' own samples, equal weights (or
    /// --weights-table).
    #[arg(long)]
    pub(crate) suite: Option<PathBuf>,
    /// A stored per-sample results table (Parquet, CSV or TSV) with columns
    /// top_1_is_correct_<model> and top_5_is_correct_<model>.
    #[arg(long)]
    pub(crate) results: Option<PathBuf>,
    /// With --results: a table of sample id -> wnid (default: the results table's own wnid column).
    #[arg(long)]
    pub(crate) labels: Option<PathBuf>,
    /// With --results: the sample id column of the results table (default: found by name).
    #[arg(long)]
    pub(crate) id_column: Option<String>,
    /// With --labels: its sample id column.
    #[arg(long, default_value = "image")]
    pub(crate) label_id_column: String,
    /// The wnid column of the labels (or results) table.
    #[arg(long, default_value = "wnid")]
    pub(crate) wnid_column: String,
    /// With --results: models to score (default: every model in the table).
    #[arg(long = "model")]
    pub(crate) models: Vec<String>,
    /// Restrict to a class subset: a wnid list, or a table with a wnid column.
    #[arg(long)]
    pub(crate) classes: Option<PathBuf>,
    /// With a --classes table: keep rows where COLUMN=VALUE (repeatable).
    #[arg(long = "classes-where", value_parser = parse_kv)]
    pub(crate) classes_where: Vec<(String, String)>,
    /// Class weights for the weighted columns: a table with a wnid column and --weight-column.
    #[arg(long)]
    pub(crate) weights_table: Option<PathBuf>,
    #[arg(long, default_value = "weight")]
    pub(crate) weight_column: String,
    /// Write the result JSON here.
    #[arg(long)]
    pub(crate) json: Option<PathBuf>,
    /// Print every metric with six decimals (fractions, not percent).
    #[arg(long)]
    pub(crate) precise: bool,
    #[command(flatten)]
    pub(crate) report: Report,
}

#[derive(Args)]
pub(crate) struct SweepArgs {
    /// Predictions logs of the suite under a loose threshold (several models, or shard logs).
    #[arg(long = "log", required = true)]
    pub(crate) logs: Vec<PathBuf>,
    /// The LAIONet suite whose min_similarity is swept (its other settings stay).
    #[arg(long, required = true)]
    pub(crate) suite: PathBuf,
    /// The thresholds: START:END:STEP, both ends included (0.70:0.90:0.02), or a list (0.8,0.82).
    #[arg(long, required = true)]
    pub(crate) min_similarity: String,
    /// What to print: table, csv (fractions, one row per threshold, model and metric) or json.
    #[arg(long, default_value = "table", value_parser = parse_format::<SweepFormat>)]
    pub(crate) format: SweepFormat,
}

/// `--format` as one of the formats `F` of a document.
fn parse_format<F: FromStr>(s: &str) -> Result<F, String>
where
    F::Err: std::fmt::Display,
{
    s.parse::<F>().map_err(|e| e.to_string())
}

pub(crate) fn parse_kv(s: &str) -> Result<(String, String), String> {
    s.split_once('=')
        .map(|(k, v)| (k.to_string(), v.to_string()))
        .ok_or_else(|| format!("expected COLUMN=VALUE, got {s:?}"))
}

pub(crate) fn positive(s: &str) -> Result<usize, String> {
    match s.parse::<usize>() {
        Ok(n) if n > 0 => Ok(n),
        _ => Err(format!("expected a whole number of at least 1, got {s:?}")),
    }
}

pub(crate) fn eval_options(p: &Perf) -> EvalOptions {
    let mut o = EvalOptions { batch: p.batch.unwrap_or(0), ..EvalOptions::default() };
    if let Some(t) = p.threads {
        o.threads = t.max(1);
    }
    o
}
