//! The `shiftbench` command line: parses ([`args`]), calls the library, prints.

mod args;
mod laionet;
mod reporter;

use std::collections::BTreeMap;
use std::path::{Path, PathBuf};
use std::process::ExitCode;

use anyhow::{anyhow, bail, Context, Result};
use clap::Parser;
use shiftbench::data::suite::Suite;
use shiftbench::report::compare::{compare, Comparison};
use shiftbench::report::plot::{plot_run, write_plots, PlotOptions};
use shiftbench::report::sinks::{render_comparison_width, render_run_width, ComparisonReport, Format, RunReport};
use shiftbench::report::table::{check_sort_key, precise_lines, sorted_run};
use shiftbench::report::{write_folder, Document};
use shiftbench::run::merge::merge;
use shiftbench::run::plan::Plan;
use shiftbench::run::run_with;
use shiftbench::run::score::score_noted;
use shiftbench::util::interrupt::{self, Interrupted, EXIT_INTERRUPTED};
use shiftbench::{demo, result_path, RunResult, RunSpec};

use args::{eval_options, Cli, Cmd, ModelCmd, Report};
use reporter::Terminal;
use shiftbench::host::card::{card_summary, model_yaml, yaml_model_path};
use shiftbench::host::model::{is_model_yaml, plugin_for_model_file};
use shiftbench::host::{LoadedModel, ModelRef, Scorer};

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

/// One line per model that scored images in the run: its speed, as recorded in `result.json`.
fn speed_lines(run: &RunResult) -> Vec<String> {
    // Three significant digits or so: 352, 35.2, 3.52, 0.352.
    let fmt = |x: f64| match x {
        x if x >= 100.0 => format!("{x:.0}"),
        x if x >= 10.0 => format!("{x:.1}"),
        x if x >= 1.0 => format!("{x:.2}"),
        x => format!("{x:.3}"),
    };
    let models = run.run.iter().flat_map(|i| &i.models);
    models
        .filter_map(|m| {
            let s = m.speed.as_ref()?;
            Some(format!(
                "speed: {} {} img/s, {} ms/img in the model ({} images)",
                m.name,
                fmt(s.images_per_second),
                fmt(s.model_ms_per_image),
                s.images
            ))
        })
        .collect()
}

/// The width of the terminal stdout is, or `None` when stdout is not a terminal (a file or a
/// pipe gets the tables at their full width, as the report folder holds them).
fn terminal_width() -> Option<u16> {
    use std::io::IsTerminal;
    if !std::io::stdout().is_terminal() {
        return None;
    }
    // SAFETY: TIOCGWINSZ writes one `winsize` into the struct it is given, which outlives the call.
    let mut ws: libc::winsize = unsafe { std::mem::zeroed() };
    let ok = unsafe { libc::ioctl(libc::STDOUT_FILENO, libc::TIOCGWINSZ, &mut ws) } == 0;
    (ok && ws.ws_col > 0).then_some(ws.ws_col)
}

/// Prints `run` in `format`, as its report folder's `run.<ext>` holds it (the tables fitted to the
/// terminal when stdout is one): for the table, the main table, the models x suites summary (two
/// suites or more: ranks, drops, effective robustness, the largest per-class drops) and the
/// problems.
fn print_run(run: &RunResult, format: Format) -> Result<()> {
    print!("{}", render_run_width(run, format, terminal_width())?);
    Ok(())
}

/// Writes the report folder of a run: every format, per-class CSV, the plots and `report.html`.
fn write_run_dir(run: &RunResult, dir: &Path, stem: &str) -> Result<()> {
    let w = write_folder(&RunReport { run, stem }, dir)?;
    eprintln!("reports in {} ({} plots)", dir.display(), w.plots);
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

/// Prints a comparison as `report` asks, writes the report folder (its HTML page as `page`), and
/// says whether it regressed.
fn report_comparison(c: &Comparison, report: &Report, page: &str) -> Result<bool> {
    print!("{}", render_comparison_width(c, report.format, terminal_width())?);
    if let Some(dir) = &report.report_dir {
        write_folder(&ComparisonReport { comparison: c, page }, dir)?;
    }
    Ok(c.regressions() > 0)
}

/// The demo's second point: the intra-class similarity of the model's embeddings on the two
/// suites, and each class's recall change against its similarity change.
fn demo_similarity(run: &RunSpec, perf: &args::Perf, isolate: &shiftbench::host::IsolationArgs) -> Result<()> {
    use shiftbench::run::similarity::{similarity_with, SimilaritySpec, DEFAULT_MIN_PER_CLASS, DEFAULT_PER_CLASS};
    let out = run.out.join("similarity");
    let spec = SimilaritySpec {
        suites: run.suites.clone(),
        model: run.models[0].clone(),
        out: out.clone(),
        per_class: DEFAULT_PER_CLASS,
        seed: 0,
        min_per_class: DEFAULT_MIN_PER_CLASS,
        eval: eval_options(perf),
        model_threads: run.model_threads,
        replicas: run.replicas,
        fresh: true,
        isolation: isolate.isolation()?,
        result: Some(result_path(&run.out, None)),
    };
    let r = match similarity_with(&spec, &Terminal::new(true)) {
        Ok(r) => r,
        Err(e) if e.downcast_ref::<shiftbench::host::NoEmbedding>().is_some() => {
            println!("\nno intra-class similarity: {e:#}");
            return Ok(());
        }
        Err(e) => return Err(e),
    };
    println!();
    println!("Why: how alike the model finds the images within each class (mean cosine similarity of its");
    println!("embeddings over all pairs of images of a class, the paper's diagnosis). The paper finds the in-the-wild");
    println!("suite less alike within classes, and that the classes whose similarity falls most lose most recall");
    println!("(a positive r below):");
    print!("{}", shiftbench::report::similarity::render_text(&r));
    write_folder(&r, &out)?;
    println!("similarity.csv, differences.csv and the plots are in {}", out.display());
    Ok(())
}

fn main_inner() -> Result<ExitCode> {
    let cli = Cli::parse();
    match cli.cmd {
        Cmd::Demo { out, model, perf, isolate } => {
            interrupt::install(reporter::say_stop)?;
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
            let run = run_with(&spec, &Terminal::new(true))?;
            println!("shiftbench demo: the example plugin on a stereotypical (ImageNet-like) and an in-the-wild (LAIONet-like)");
            println!(
                "version of the same 10 classes. Recall in percent, ± one standard error; LAION-wt weighs classes by"
            );
            println!("their frequency in the LAIONet-like suite.");
            print_run(&run, Format::Table)?;
            println!("suites, predictions logs and result.json are in {}", out.display());
            check_model_errors(&run)?;
            demo_similarity(&spec, &perf, &isolate)?;
            laionet::demo_build(&out, &isolate)?;
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
            interrupt::install(reporter::say_stop)?;
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
            if let Some(key) = &sort {
                // Before anything runs. A suite whose YAML cannot be read is left to the run to report.
                let names: Option<Vec<String>> =
                    spec.suites.iter().map(|p| Suite::read_yaml(p).ok().map(|y| y.name)).collect();
                if let Some(names) = names {
                    check_sort_key(key, &names, spec.models.len()).map_err(|e| anyhow!(e))?;
                }
            }
            let run = run_with(&spec, &Terminal::new(true))?;
            // One order for every report of the run: the terminal, the report folder, the page.
            let run = match sort.as_deref() {
                Some(key) => sorted_run(run, key).map_err(|e| anyhow!(e))?,
                None => run,
            };
            let path = result_path(Path::new(&out), shard);
            // With a baseline and a machine format, stdout holds the comparison alone.
            if report.format == Format::Table {
                print_run(&run, Format::Table)?;
                for l in speed_lines(&run) {
                    println!("{l}");
                }
                println!("result: {}", path.display());
            } else if base.is_none() {
                print_run(&run, report.format)?;
            }
            if let Some(dir) = &report.report_dir {
                write_run_dir(&run, dir, "run")?;
            }
            // The comparison is reported even when a model failed: the models that ran are still
            // judged against the baseline (a nightly job must not lose its verdict on them).
            let regressed = match (base, baseline) {
                (Some(b), Some(bp)) => {
                    let c = compare(&b, &run, &bp.display().to_string(), &path.display().to_string(), tol);
                    // report.html is the run's page; the comparison's is beside it.
                    report_comparison(&c, &report, "compare.html")?
                }
                _ => false,
            };
            check_model_errors(&run)?;
            if strict || plan.strict.unwrap_or(false) {
                strict_check(&run)?;
            }
            if regressed {
                return Ok(ExitCode::from(1));
            }
        }
        Cmd::Similarity { suites, model, out, per_class, seed, min_per_class, result, fresh, perf, isolate } => {
            use shiftbench::run::similarity::{similarity_with, SimilaritySpec};
            interrupt::install(reporter::say_stop)?;
            let spec = SimilaritySpec {
                suites,
                model,
                out: out.clone(),
                per_class,
                seed,
                min_per_class,
                eval: eval_options(&perf),
                model_threads: perf.model_threads.unwrap_or(0),
                replicas: perf.replicas,
                fresh,
                isolation: isolate.isolation()?,
                result,
            };
            let r = similarity_with(&spec, &Terminal::new(true))?;
            print!("{}", shiftbench::report::similarity::render_text(&r));
            let w = write_folder(&r, &out)?;
            for s in &w.skipped {
                println!("skipped {s}");
            }
            println!("wrote {}", w.files.iter().map(|p| p.display().to_string()).collect::<Vec<_>>().join(", "));
        }
        Cmd::Compare { baseline, new, tol, report } => {
            let (b, n) = (RunResult::read(&baseline)?, RunResult::read(&new)?);
            let c = compare(&b, &n, &baseline.display().to_string(), &new.display().to_string(), tol.get()?);
            if report_comparison(&c, &report, "report.html")? {
                return Ok(ExitCode::from(1));
            }
        }
        Cmd::Plot { result, out, x_suite, y_suite, top5, group_by } => {
            let r = RunResult::read(&result)?;
            let plots = plot_run(&r, &PlotOptions { x_suite, y_suite, top5, group_by })?;
            for n in &plots.notes {
                eprintln!("note: {n}");
            }
            for p in write_plots(&plots.plots, &out)? {
                println!("wrote {}", p.display());
            }
            for s in plots.skipped_lines(&out) {
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
            let merged = merge(&inputs, &weights, allow_partial, &Terminal::new(true))?;
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
        Cmd::Worker { library, config, threads, shm_fd, text_encoder } => {
            use shiftbench::host::worker::{serve, serve_text, WorkerExit};
            let served = if text_encoder {
                serve_text(&library, config.as_deref(), threads)
            } else {
                serve(&library, config.as_deref(), threads, shm_fd)
            };
            let code = match served {
                Ok(()) => 0,
                Err(WorkerExit::Quiet) => 2,
                Err(e) => {
                    eprintln!("{e}");
                    2
                }
            };
            std::process::exit(code);
        }
        Cmd::Model { cmd } => model_command(cmd)?,
        Cmd::History { runs, tol, report } => {
            let h = shiftbench::report::history::history(&runs, tol.get()?)?;
            print!("{}", h.render_width(report.format, terminal_width())?);
            if let Some(dir) = &report.report_dir {
                let w = write_folder(&h, dir)?;
                eprintln!("reports in {} (report.html, {} plots)", dir.display(), w.plots);
            }
            if !h.newest_regressions().is_empty() {
                return Ok(ExitCode::from(1));
            }
        }
        Cmd::Score(a) => {
            let (run, notes) = score_noted(&a.spec())?;
            for n in &notes {
                eprintln!("{n}");
            }
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
        Cmd::Sweep(a) => sweep_command(&a)?,
        Cmd::Laionet { cmd } => laionet::laionet_command(cmd)?,
    }
    Ok(ExitCode::SUCCESS)
}

/// `shiftbench sweep`: the logs re-scored at each threshold, printed as a table, CSV or JSON.
fn sweep_command(a: &args::SweepArgs) -> Result<()> {
    use shiftbench::run::sweep::{parse_thresholds, sweep, SweepSpec};
    let thresholds = parse_thresholds(&a.min_similarity).context("--min-similarity")?;
    let s = sweep(&SweepSpec { logs: a.logs.clone(), suite: a.suite.clone(), thresholds })?;
    print!("{}", s.render_width(a.format, terminal_width())?);
    Ok(())
}

/// `shiftbench model show|init`: the model loaded in this process, described or written out as a
/// model YAML.
fn model_command(cmd: ModelCmd) -> Result<()> {
    match cmd {
        ModelCmd::Show { file } => {
            let r = ModelRef::resolve(&file)?;
            let m = LoadedModel::load(&r.library, r.config_path(), 0).with_context(|| format!("model {file}"))?;
            println!("model: {file}");
            println!("plugin: {} ({})", m.plugin_name(), r.library.display());
            if let Some(c) = r.config_path().filter(|_| !r.assumed()) {
                println!("model YAML: {}", c.display());
            }
            let described = m.describe();
            if !described.is_empty() {
                println!("read from the model: {}", described.replace('\n', "\n  "));
            }
            let how = if r.assumed() {
                "assumed (no model YAML: read from the model or torchvision's defaults)"
            } else {
                "as its plugin states it"
            };
            println!("card, {how}:\n  name {}: {}", m.card().name, card_summary(m.card(), m.labels()));
            match m.embedding_len() {
                0 => println!(
                    "embedding: none (shiftbench similarity needs one: `embedding:` in the model YAML, or an embed(batch) method of a Python model)"
                ),
                n => println!("embedding: {n} values per image (for shiftbench similarity)"),
            }
            if r.assumed() {
                println!("pin it in a model YAML to adjust: shiftbench model init {file} --out {}.yaml", m.card().name);
            }
        }
        ModelCmd::Init { file, out, force } => {
            let Some(plugin) = plugin_for_model_file(&file) else {
                bail!(
                    "model init writes a YAML for a model file (.onnx, .pt for TorchScript, or .py for Python); {file} is not one"
                );
            };
            if let Some(o) = &out {
                check_init_out(o, force)?;
            }
            let r = ModelRef::resolve(&file)?;
            let m = LoadedModel::load(&r.library, r.config_path(), 0).with_context(|| format!("model {file}"))?;
            let dir =
                out.as_deref().and_then(Path::parent).filter(|d| !d.as_os_str().is_empty()).unwrap_or(Path::new("."));
            std::fs::create_dir_all(dir).with_context(|| format!("cannot create {}", dir.display()))?;
            let model_path = yaml_model_path(Path::new(&file), dir);
            let text = model_yaml(plugin, &model_path, m.card(), m.labels(), &file);
            match &out {
                Some(o) => {
                    shiftbench::util::files::write_atomic(o, text.as_bytes())?;
                    eprintln!("wrote {}: check its preprocessing, then run with --model {}", o.display(), o.display());
                }
                None => print!("{text}"),
            }
        }
    }
    Ok(())
}

/// `model init --out`: a model YAML's name (`run --model` knows one by its extension), and not
/// over a file already there (a user's edits) unless `--force`.
fn check_init_out(out: &Path, force: bool) -> Result<()> {
    if !is_model_yaml(&out.to_string_lossy()) {
        bail!(
            "--out {} must end in .yaml or .yml (run --model recognises a model YAML by its extension)",
            out.display()
        );
    }
    if out.is_dir() {
        bail!("--out {} is a folder; give the YAML's file name", out.display());
    }
    if !force && (out.exists() || out.is_symlink()) {
        bail!("{} already exists; pass --force to overwrite it", out.display());
    }
    Ok(())
}

fn main() -> ExitCode {
    match main_inner() {
        Ok(code) => code,
        Err(e) if e.is::<Interrupted>() || e.is::<shiftbench::run::laionet::BuildInterrupted>() => {
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
