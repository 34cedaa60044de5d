//! The `shiftbench` command line: parses, calls the library, prints.

use std::collections::BTreeMap;
use std::io::IsTerminal;
use std::path::{Path, PathBuf};
use std::process::ExitCode;

use anyhow::{anyhow, bail, Context, Result};
use clap::{Args, Parser, Subcommand};
use shiftbench::data::suite::Suite;
use shiftbench::host::worker::IsolationArgs;
use shiftbench::report::compare::{compare, Comparison, Tolerance};
use shiftbench::report::plot::{plot_run, PlotOptions};
use shiftbench::report::sinks::{render_comparison, render_run, write_comparison_reports, write_run_reports, Format};
use shiftbench::report::table::{
    ordered, precise_lines, problem_lines, sort_models, suites_in_order, summary_table, table,
};
use shiftbench::results::shard::Shard;
use shiftbench::run::merge::merge;
use shiftbench::run::options::Argmax;
use shiftbench::run::plan::Plan;
use shiftbench::run::score::{score, ScoreSpec};
use shiftbench::util::interrupt::{self, Interrupted, EXIT_INTERRUPTED};
use shiftbench::{demo, result_path, run, EvalOptions, RunResult, RunSpec};

#[derive(Parser)]
#[command(
    name = "shiftbench",
    version,
    about = "How ImageNet classifiers hold up when ImageNet is swapped for LAIONet"
)]
struct Cli {
    #[command(subcommand)]
    cmd: Cmd,
}

#[derive(Args, Clone)]
struct Perf {
    /// Images per model call (capped by the model's own limit) [default: 32 for a model running
    /// as one copy, 8 per copy for a model running as several].
    #[arg(long, value_parser = positive)]
    batch: Option<usize>,
    /// Decode/preprocess threads (default: all cores).
    #[arg(long)]
    threads: Option<usize>,
    /// Threads each copy of a model may use for inference (default: its share of the cores when
    /// a model runs as several copies, else the plugin decides).
    #[arg(long)]
    model_threads: Option<u32>,
    /// Copies of each model to run side by side, each scoring its own batches (default: the
    /// model YAML's `replicas:`, else one per core, up to 4, for a model YAML on the CPU, else 1).
    #[arg(long, value_parser = clap::value_parser!(u32).range(1..=256))]
    replicas: Option<u32>,
}

/// How results are reported.
#[derive(Args, Clone)]
struct Report {
    /// What to print: table, markdown, csv, json or junit.
    #[arg(long, default_value = "table")]
    format: Format,
    /// Also write the report in every format (and the plots) into this folder.
    #[arg(long)]
    report_dir: Option<PathBuf>,
}

/// When a change counts as a regression.
#[derive(Args, Clone)]
struct Tol {
    /// A drop must exceed this many standard errors of the difference...
    #[arg(long, default_value_t = 3.0)]
    tolerance_se: f64,
    /// ...and this absolute amount (a fraction: 0.005 is half a percentage point).
    #[arg(long, default_value_t = 0.005)]
    min_drop: f64,
}

impl Tol {
    fn get(&self) -> Result<Tolerance> {
        if !(self.tolerance_se >= 0.0 && self.min_drop >= 0.0) {
            bail!("--tolerance-se and --min-drop must be non-negative numbers");
        }
        Ok(Tolerance { se: self.tolerance_se, min_drop: self.min_drop })
    }
}

/// The exit status of a run in which some model could not be loaded or stopped.
const EXIT_MODEL_ERROR: u8 = 3;

/// Some model/suite pairs ended with an error row.
#[derive(Debug)]
struct ModelErrors(usize);

impl std::fmt::Display for ModelErrors {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(
            f,
            "{} model/suite pair(s) stopped with an error; the other results are complete (see ERROR above)",
            self.0
        )
    }
}

impl std::error::Error for ModelErrors {}

fn check_model_errors(run: &RunResult) -> Result<()> {
    match run.model_errors() {
        0 => Ok(()),
        n => Err(ModelErrors(n).into()),
    }
}

/// `--strict`: an error naming every sample that failed or is missing.
fn strict_check(run: &RunResult) -> Result<()> {
    let names = run.problem_samples();
    if names.is_empty() {
        return Ok(());
    }
    bail!("--strict: {} samples failed or are missing: {}", names.len(), names.join("; "))
}

impl ScoreArgs {
    fn spec(&self) -> ScoreSpec {
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
enum Cmd {
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
        /// SUITE:laion, drop, drop:laion, drop:SUITE, model, or a column header; append :asc or
        /// :desc to choose the direction.
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
    },
}

#[derive(Args)]
struct ScoreArgs {
    /// Predictions logs written by `shiftbench run` (logs of shards of one run are merged).
    #[arg(long = "log")]
    logs: Vec<PathBuf>,
    /// With --log: the suite whose class weights to use (default: equal weights).
    #[arg(long)]
    suite: Option<PathBuf>,
    /// A stored per-sample results table (Parquet, CSV or TSV) with columns
    /// top_1_is_correct_<model> and top_5_is_correct_<model>.
    #[arg(long)]
    results: Option<PathBuf>,
    /// With --results: a table of sample id -> wnid (default: the results table's own wnid column).
    #[arg(long)]
    labels: Option<PathBuf>,
    /// With --results: the sample id column of the results table (default: found by name).
    #[arg(long)]
    id_column: Option<String>,
    /// With --labels: its sample id column.
    #[arg(long, default_value = "image")]
    label_id_column: String,
    /// The wnid column of the labels (or results) table.
    #[arg(long, default_value = "wnid")]
    wnid_column: String,
    /// With --results: models to score (default: every model in the table).
    #[arg(long = "model")]
    models: Vec<String>,
    /// Restrict to a class subset: a wnid list, or a table with a wnid column.
    #[arg(long)]
    classes: Option<PathBuf>,
    /// With a --classes table: keep rows where COLUMN=VALUE (repeatable).
    #[arg(long = "classes-where", value_parser = parse_kv)]
    classes_where: Vec<(String, String)>,
    /// Class weights for the weighted columns: a table with a wnid column and --weight-column.
    #[arg(long)]
    weights_table: Option<PathBuf>,
    #[arg(long, default_value = "weight")]
    weight_column: String,
    /// Write the result JSON here.
    #[arg(long)]
    json: Option<PathBuf>,
    /// Print every metric with six decimals (fractions, not percent).
    #[arg(long)]
    precise: bool,
    #[command(flatten)]
    report: Report,
}

fn parse_kv(s: &str) -> Result<(String, String), String> {
    s.split_once('=')
        .map(|(k, v)| (k.to_string(), v.to_string()))
        .ok_or_else(|| format!("expected COLUMN=VALUE, got {s:?}"))
}

fn positive(s: &str) -> Result<usize, String> {
    match s.parse::<usize>() {
        Ok(n) if n > 0 => Ok(n),
        _ => Err(format!("expected a whole number of at least 1, got {s:?}")),
    }
}

fn eval_options(p: &Perf) -> EvalOptions {
    let mut o = EvalOptions {
        batch: p.batch.unwrap_or(0),
        progress: std::io::stderr().is_terminal(),
        ..EvalOptions::default()
    };
    if let Some(t) = p.threads {
        o.threads = t.max(1);
    }
    o
}

/// Prints the main table, the models x suites summary (two suites or more) and the problems,
/// models ordered by `sort` if given.
fn print_results_sorted(run: &RunResult, sort: Option<&str>) -> Result<()> {
    let results = match sort {
        Some(key) => ordered(&run.results, &sort_models(&run.results, key).map_err(|e| anyhow!(e))?),
        None => run.results.clone(),
    };
    println!("{}", table(&results));
    if suites_in_order(&results).len() > 1 {
        println!("{}", summary_table(&results));
    }
    for l in problem_lines(&results, 10) {
        println!("{l}");
    }
    Ok(())
}

fn print_results(run: &RunResult) {
    print_results_sorted(run, None).expect("no sort key");
}

/// Prints `run` in `format` (the table with its problem lines, or a machine format).
fn print_run(run: &RunResult, format: Format) -> Result<()> {
    if format == Format::Table {
        print_results(run);
    } else {
        print!("{}", render_run(run, format)?);
    }
    Ok(())
}

/// Writes the report folder of a run: every format, per-class CSV and the plots.
fn write_run_dir(run: &RunResult, dir: &Path, stem: &str) -> Result<()> {
    write_run_reports(dir, stem, run)?;
    let plots = plot_run(run, &dir.join("plots"), &PlotOptions::default())?;
    eprintln!("reports in {} ({} plots)", dir.display(), plots.written.len());
    Ok(())
}

/// Prints `run` as `report` asks and writes the report folder.
fn report_run(run: &RunResult, report: &Report, stem: &str) -> Result<()> {
    print_run(run, report.format)?;
    if let Some(dir) = &report.report_dir {
        write_run_dir(run, dir, stem)?;
    }
    Ok(())
}

/// Prints a comparison as `report` asks, writes the report folder, and says whether it regressed.
fn report_comparison(c: &Comparison, report: &Report) -> Result<bool> {
    print!("{}", render_comparison(c, report.format)?);
    if let Some(dir) = &report.report_dir {
        write_comparison_reports(dir, "compare", c)?;
    }
    Ok(c.regressions() > 0)
}

fn main_inner() -> Result<ExitCode> {
    let cli = Cli::parse();
    match cli.cmd {
        Cmd::Demo { out, model, perf, isolate } => {
            interrupt::install()?;
            let suites = demo::generate(&out)
                .with_context(|| format!("cannot write the demo suites under {}", out.display()))?;
            let spec = RunSpec {
                suites: vec![suites.imagenet, suites.laionet],
                models: vec![model],
                out: out.clone(),
                eval: eval_options(&perf),
                model_threads: perf.model_threads.unwrap_or(0),
                replicas: perf.replicas,
                fresh: true,
                isolation: isolate.isolation()?,
                shard: None,
            };
            let run = run(&spec)?;
            println!("shiftbench demo: the example plugin on a stereotypical (ImageNet-like) and an in-the-wild (LAIONet-like)");
            println!(
                "version of the same 10 classes. Recall in percent, ± one standard error; LAION-wt weighs classes by"
            );
            println!("their frequency in the LAIONet-like suite.");
            print_results(&run);
            println!("suites, predictions logs and result.json are in {}", out.display());
            check_model_errors(&run)?;
        }
        Cmd::Run {
            plan,
            suites,
            models,
            out,
            fresh,
            strict,
            shard,
            baseline,
            tol,
            report,
            sort,
            argmax,
            perf,
            isolate,
        } => {
            interrupt::install()?;
            let isolation = isolate.isolation()?;
            let tol = tol.get()?;
            let base = baseline.as_deref().map(RunResult::read).transpose()?;
            let plan = plan.as_deref().map(Plan::load).transpose()?.unwrap_or_default();
            let mut perf = perf;
            perf.batch = perf.batch.or(plan.batch);
            perf.threads = perf.threads.or(plan.threads);
            let mut eval = eval_options(&perf);
            eval.argmax = argmax.or(plan.argmax).unwrap_or_default();
            let all_suites: Vec<PathBuf> = plan.suites.iter().cloned().chain(suites).collect();
            let all_models: Vec<String> = plan.models.iter().cloned().chain(models).collect();
            if all_suites.is_empty() || all_models.is_empty() {
                bail!("give at least one --suite and one --model, or a --plan that lists them");
            }
            let out = out.or(plan.out.clone()).unwrap_or_else(|| PathBuf::from("shiftbench-out"));
            let spec = RunSpec {
                suites: all_suites,
                models: all_models,
                out: out.clone(),
                eval,
                model_threads: perf.model_threads.or(plan.model_threads).unwrap_or(0),
                replicas: perf.replicas.or(plan.replicas),
                fresh: fresh || plan.fresh.unwrap_or(false),
                shard,
                isolation,
            };
            let sort = sort.or(plan.sort.clone());
            let run = run(&spec)?;
            let path = result_path(Path::new(&out), shard);
            // With a baseline and a machine format, stdout holds the comparison alone.
            if report.format == Format::Table {
                print_results_sorted(&run, sort.as_deref())?;
                println!("result: {}", path.display());
            } else if base.is_none() {
                print_run(&run, report.format)?;
            }
            if let Some(dir) = &report.report_dir {
                write_run_dir(&run, dir, "run")?;
            }
            check_model_errors(&run)?;
            if strict || plan.strict.unwrap_or(false) {
                strict_check(&run)?;
            }
            if let (Some(b), Some(bp)) = (base, baseline) {
                let c = compare(&b, &run, &bp.display().to_string(), &path.display().to_string(), tol);
                if report_comparison(&c, &report)? {
                    return Ok(ExitCode::from(1));
                }
            }
        }
        Cmd::Compare { baseline, new, tol, report } => {
            let (b, n) = (RunResult::read(&baseline)?, RunResult::read(&new)?);
            let c = compare(&b, &n, &baseline.display().to_string(), &new.display().to_string(), tol.get()?);
            if report_comparison(&c, &report)? {
                return Ok(ExitCode::from(1));
            }
        }
        Cmd::Plot { result, out, x_suite, y_suite, top5 } => {
            let r = RunResult::read(&result)?;
            let plots = plot_run(&r, &out, &PlotOptions { x_suite, y_suite, top5 })?;
            for p in &plots.written {
                println!("wrote {}", p.display());
            }
            for s in &plots.skipped {
                println!("skipped {s}");
            }
        }
        Cmd::Merge { inputs, out, suites, allow_partial, report } => {
            let out = match out {
                Some(o) => o,
                None if inputs.len() == 1 && inputs[0].is_dir() => inputs[0].clone(),
                None => bail!("give --out DIR: where the merged result.json goes"),
            };
            let mut weights = BTreeMap::new();
            for p in &suites {
                let s = Suite::load(p)?;
                weights.insert(s.name.clone(), s.weights);
            }
            let merged = merge(&inputs, &weights, allow_partial, std::io::stderr().is_terminal())?;
            let path = out.join("result.json");
            merged.run.write(&path)?;
            report_run(&merged.run, &report, "run")?;
            if report.format == Format::Table {
                println!("merged {} logs into {}", merged.logs.len(), path.display());
            }
        }
        Cmd::Verify { suites, write, threads } => {
            let threads = threads.unwrap_or_else(|| std::thread::available_parallelism().map(|n| n.get()).unwrap_or(1));
            let mut failed = Vec::new();
            for p in &suites {
                let suite = Suite::load(p)?;
                if let Some(w) = &write {
                    let (text, problems) = shiftbench::data::verify::checksum_file(&suite, threads)?;
                    shiftbench::util::files::write_atomic(w, text.as_bytes())?;
                    println!(
                        "{}: wrote {} checksums to {} ({} images could not be read)",
                        suite.name,
                        suite.samples.len() - problems.len(),
                        w.display(),
                        problems.len()
                    );
                    for (id, why) in problems.iter().take(10) {
                        println!("  {id}: {why}");
                    }
                    continue;
                }
                if suite.checksums.is_empty() {
                    bail!("{}: the suite pins no checksums (add `checksums:` or a checksum column; `--write FILE` makes one)", p.display());
                }
                let r = shiftbench::data::verify::verify(&suite, threads)?;
                for l in r.lines(&suite.name, 20) {
                    println!("{l}");
                }
                if !r.passed() {
                    failed.push(suite.name.clone());
                }
            }
            if !failed.is_empty() {
                bail!("verify failed for {}", failed.join(", "));
            }
        }
        Cmd::Worker { library, config, threads, shm_fd } => {
            std::process::exit(shiftbench::host::worker::serve(&library, config.as_deref(), threads, shm_fd));
        }
        Cmd::Score(a) => {
            let run = score(&a.spec())?;
            if let Some(j) = &a.json {
                run.write(j)?;
            }
            if a.precise {
                for l in precise_lines(&run.results) {
                    println!("{l}");
                }
            } else {
                report_run(&run, &a.report, "score")?;
            }
        }
    }
    Ok(ExitCode::SUCCESS)
}

fn main() -> ExitCode {
    match main_inner() {
        Ok(code) => code,
        Err(e) if e.is::<Interrupted>() => {
            eprintln!("{e}");
            ExitCode::from(EXIT_INTERRUPTED)
        }
        Err(e) if e.is::<ModelErrors>() => {
            eprintln!("error: {e}");
            ExitCode::from(EXIT_MODEL_ERROR)
        }
        Err(e) => {
            eprintln!("error: {e:#}");
            ExitCode::from(2)
        }
    }
}
