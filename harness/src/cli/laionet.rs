//! `shiftbench laionet build`: its flags and what the CLI does with them (open the encoder, call
//! [`shiftbench::run::laionet`], write the class table and figures, print the summary).

use std::path::PathBuf;

use anyhow::{bail, Result};
use clap::{Args, Subcommand};
use shiftbench::host::text::{open_text_encoder, TextEncoderOptions};
use shiftbench::host::worker::IsolationArgs;
use shiftbench::report::laionet::{summary_lines, write_build_files};
use shiftbench::results::shard::Shard;
use shiftbench::run::laionet::{build, count_matches, paper_threshold, BuildSpec};

use crate::reporter::Terminal;

#[derive(Subcommand)]
pub(crate) enum LaionetCmd {
    /// Build LAIONet from LAION caption metadata as the paper did (Section 2): find each
    /// caption's ImageNet lemmas (captions naming two or more classes are dropped), embed the
    /// captions naming one class and the class queries (`<name> which is <definition>`) with a
    /// text encoder, and keep captions whose similarity is strictly above the threshold and whose
    /// NSFW tag is UNLIKELY.
    ///
    /// Writes into --out: candidates.parquet (every caption naming one class, all input columns
    /// plus wnid, name_def_wnid and the similarity, before threshold and NSFW), laionet.parquet
    /// (the selected rows), laionet.yaml and candidates.yaml (suites over them; images from
    /// ${LAIONET_IMAGES}), urls.txt (for img2dataset), class_counts.csv, summary.json and the
    /// paper's Figures 3 and 4 (SVG and CSV). Each caption file's work is kept under parts/ and
    /// reused by a rerun with the same file and settings; --shard i/N does only every N-th file
    /// (a last run without --shard puts the parts together).
    Build(BuildArgs),
}

#[derive(Args)]
pub(crate) struct BuildArgs {
    /// LAION metadata Parquet files, or folders of them (columns SAMPLE_ID, URL, TEXT, NSFW;
    /// every other column is carried over).
    #[arg(long, required = true, num_args = 1..)]
    captions: Vec<PathBuf>,
    /// The text encoder: a folder made by scripts/export-text-encoder.py (all-mpnet-base-v2,
    /// clip-vit-base-patch32, ...), or a plugin's built-in one (`example`: a toy encoder, no
    /// download). Not with --match-only.
    #[arg(long)]
    encoder: Option<String>,
    /// Where the outputs go.
    #[arg(long)]
    out: PathBuf,
    /// Keep captions whose similarity is strictly above this. Default: the paper's for the
    /// encoder, 0.58 for an MPNet encoder (all-mpnet-base-v2), 0.82 for a CLIP one; other
    /// encoders must be given one.
    #[arg(long)]
    threshold: Option<f64>,
    /// Keep each class's K most similar captions (after the threshold and the NSFW filter; ties
    /// broken by sample id): the paper's top-50 variant is 50.
    #[arg(long, value_name = "K", value_parser = crate::args::positive)]
    max_per_class: Option<usize>,
    /// A lemma dictionary (lemma and wnid columns) or lemma lists per class (wnid and lemmas
    /// columns, or `wnid: lemma, lemma` lines as the paper's ILSVRC2012_synsets.txt; lemmas of
    /// more than one class are dropped). Default: the paper's 1,825 lemmas of 995 classes.
    #[arg(long)]
    lemmas: Option<PathBuf>,
    /// A query table (wnid and query columns). Default: the paper's name_def queries.
    #[arg(long)]
    queries: Option<PathBuf>,
    /// Do only every N-th caption file, starting at the i-th (0-based), e.g. a Slurm array task.
    #[arg(long)]
    shard: Option<Shard>,
    /// Match lemmas ignoring the case of ASCII letters (the paper matches case-sensitively).
    #[arg(long)]
    ignore_case: bool,
    #[arg(long, default_value = "TEXT")]
    text_column: String,
    #[arg(long, default_value = "SAMPLE_ID")]
    id_column: String,
    #[arg(long, default_value = "URL")]
    url_column: String,
    #[arg(long, default_value = "NSFW")]
    nsfw_column: String,
    /// NSFW tags kept (repeat for several).
    #[arg(long = "nsfw-keep", default_values_t = vec!["UNLIKELY".to_string()])]
    nsfw_keep: Vec<String>,
    /// Keep captions whatever their NSFW tag.
    #[arg(long)]
    no_nsfw_filter: bool,
    /// Only count matches per class (class_counts.csv, summary.json): no encoder, no parts.
    #[arg(long)]
    match_only: bool,
    /// Captions per encoder call.
    #[arg(long, default_value_t = 256, value_parser = crate::args::positive)]
    encode_batch: usize,
    /// Threads the encoder may use (default: the plugin decides).
    #[arg(long, default_value_t = 0)]
    encoder_threads: usize,
    #[command(flatten)]
    isolate: IsolationArgs,
}

pub(crate) fn laionet_command(cmd: LaionetCmd) -> Result<()> {
    let LaionetCmd::Build(a) = cmd;
    let mut spec = BuildSpec::new(a.captions.clone(), a.out.clone(), a.threshold.unwrap_or(f64::NAN));
    spec.lemmas = a.lemmas.clone();
    spec.queries = a.queries.clone();
    spec.ignore_case = a.ignore_case;
    spec.text_column = a.text_column.clone();
    spec.id_column = a.id_column.clone();
    spec.url_column = a.url_column.clone();
    spec.nsfw_column = (!a.no_nsfw_filter).then(|| a.nsfw_column.clone());
    spec.nsfw_keep = a.nsfw_keep.clone();
    spec.max_per_class = a.max_per_class;
    spec.shard = a.shard;
    spec.encode_batch = a.encode_batch;
    let reporter = Terminal::new(true);
    let built = if a.match_only {
        if a.encoder.is_some() || a.threshold.is_some() || a.max_per_class.is_some() || a.shard.is_some() {
            bail!("--match-only counts matches only: it takes no --encoder, --threshold, --max-per-class or --shard");
        }
        count_matches(&spec, &reporter)?
    } else {
        let Some(enc) = &a.encoder else {
            bail!("give --encoder (a text encoder), or --match-only to count matches without one");
        };
        // Ctrl-C or SIGTERM stops between batches: finished parts stay, the same command goes on.
        shiftbench::util::interrupt::install(crate::reporter::say_stop)?;
        let options = TextEncoderOptions { threads: a.encoder_threads, isolation: a.isolate.isolation()? };
        let mut encoder = open_text_encoder(enc, &options)?;
        spec.threshold = match (a.threshold, paper_threshold(encoder.name())) {
            (Some(t), _) => t,
            (None, Some(t)) => {
                eprintln!("threshold {t}: the paper's for {}", encoder.name());
                t
            }
            (None, None) => bail!(
                "give --threshold for the encoder {}: the paper used 0.82 for CLIP and 0.58 for all-mpnet-base-v2",
                encoder.name()
            ),
        };
        if !spec.threshold.is_finite() {
            bail!("--threshold must be a number");
        }
        build(&spec, encoder.as_mut(), &reporter)?
    };
    // A shard's counts are its files' only: the folder's tables wait for the assembly.
    let files = if built.shard_only.is_some() { Vec::new() } else { write_build_files(&built, &spec.out)? };
    for l in summary_lines(&built) {
        println!("{l}");
    }
    match built.shard_only {
        Some(s) => println!(
            "shard {}/{}: parts written under {}; run the same command without --shard (after every shard) to put them together",
            s.index,
            s.count,
            spec.out.join("parts").display()
        ),
        None if a.match_only => println!("in {}: summary.json, {}", spec.out.display(), files.join(", ")),
        None => println!(
            "in {}: candidates.parquet, laionet.parquet, laionet.yaml, candidates.yaml, urls.txt, summary.json, {}",
            spec.out.display(),
            files.join(", ")
        ),
    }
    Ok(())
}

/// The demo's last step: LAIONet built from the few hundred captions the project ships, with the
/// example plugin's toy text encoder (no download), and the counts a user would check.
pub(crate) fn demo_build(out: &std::path::Path, isolate: &IsolationArgs) -> Result<()> {
    let captions = shiftbench::data::demo::write_captions(out)?;
    let dir = out.join("laionet-build");
    let mut spec = BuildSpec::new(vec![captions], dir.clone(), DEMO_THRESHOLD);
    spec.max_per_class = None;
    let options = TextEncoderOptions { threads: 0, isolation: isolate.isolation()? };
    let mut encoder = open_text_encoder("example", &options)?;
    let built = build(&spec, encoder.as_mut(), &Terminal::new(false))?;
    write_build_files(&built, &dir)?;
    println!();
    println!(
        "Where LAIONet comes from: `shiftbench laionet build` on {} LAION-style captions the project",
        built.summary.captions
    );
    println!(
        "ships, as the paper builds it: the captions naming exactly one class by its lemmas are candidates, those"
    );
    println!(
        "naming two are dropped, and a candidate is kept when its text is similar enough to its class's definition (the"
    );
    println!("example plugin's toy encoder here, threshold {DEMO_THRESHOLD}; the paper: all-mpnet-base-v2 at 0.58, CLIP at 0.82):");
    for l in summary_lines(&built) {
        if !l.starts_with("note:") {
            println!("  {l}");
        }
    }
    println!(
        "  (shiftbench laionet build --captions {} --encoder example --threshold {DEMO_THRESHOLD} --out {})",
        out.join("captions").display(),
        dir.display()
    );
    Ok(())
}

/// The demo's threshold for the toy encoder.
const DEMO_THRESHOLD: f64 = 0.3;
