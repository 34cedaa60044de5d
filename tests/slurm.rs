//! The documented Slurm path on a real Slurm. `scripts/slurm-local.sh` sets up a one-node cluster
//! on this machine (installing Debian's slurm-wlm and munge with apt-get if they are missing);
//! the job scripts of docs/scale-out.md, kept as docs/slurm/nightly.sbatch and merge.sbatch, run
//! 4 shards of the 1,000 sample photos with two ONNX models as a job array and merge them in a job
//! that depends on the array. Then once more with one array task cancelled while it runs and
//! resubmitted alone: it resumes from its log. Both merged results equal an unsharded run's to the
//! last bit, and the merge job's `shiftbench compare` with the unsharded result finds no change.
//!
//! Skipped, passing with a `SKIPPED slurm:` line, where Slurm cannot be set up: not Linux, not
//! root, Slurm missing and no apt-get (and, outside CI, apt-get failing), no ../shared data, the
//! ONNX plugin not built. The page and the files are compared without Slurm, always.

mod common;

use std::collections::HashSet;
use std::path::{Path, PathBuf};
use std::process::{Command, Stdio};
use std::time::{Duration, Instant};

use shiftbench::results::predlog::{read_log, read_log_lenient};
use shiftbench::results::shard::Shard;
use shiftbench::{result_path, shard_log_path, EvalResult, RunResult};

const TEST: &str = "slurm";
/// One cluster at a time: two started at once could pick the same free ports.
static ONE_CLUSTER: std::sync::Mutex<()> = std::sync::Mutex::new(());
const SHARDS: u32 = 4;
/// The array task cancelled mid-run: the first to start.
const KILLED: u32 = 0;
const MODELS: [&str; 2] = ["mobilenetv2-12-int8", "squeezenet1.1-fp16"];
const SUITE: &str = "imagenet-samples";
/// CPU-only overrides of nightly.sbatch's `#SBATCH` lines, as docs/scale-out.md says.
const CPU_ONLY: [&str; 2] = ["--gres=none", "--cpus-per-task=1"];

#[test]
fn the_page_shows_the_sbatch_files_verbatim() {
    let repo = common::repo();
    let page = std::fs::read_to_string(repo.join("docs/scale-out.md")).unwrap();
    let shown: Vec<String> =
        common::fenced_blocks(&page, "bash").into_iter().filter(|b| b.contains("#SBATCH")).collect();
    let mut files: Vec<(String, String)> = std::fs::read_dir(repo.join("docs/slurm"))
        .unwrap()
        .map(|e| e.unwrap().path())
        .filter(|p| p.extension().is_some_and(|x| x == "sbatch"))
        .map(|p| (p.file_name().unwrap().to_string_lossy().into_owned(), std::fs::read_to_string(&p).unwrap()))
        .collect();
    files.sort();
    let names: Vec<&str> = files.iter().map(|(n, _)| n.as_str()).collect();
    assert_eq!(names, ["laionet-assemble.sbatch", "laionet-build.sbatch", "merge.sbatch", "nightly.sbatch"]);
    assert_eq!(
        shown.len(),
        files.len(),
        "docs/scale-out.md shows {} job scripts, docs/slurm/ has {names:?}",
        shown.len()
    );
    for (name, text) in &files {
        // Each file's second line names it: "# nightly.sbatch: ...".
        let block = shown
            .iter()
            .find(|b| b.lines().nth(1).is_some_and(|l| l.starts_with(&format!("# {name}:"))))
            .unwrap_or_else(|| panic!("docs/scale-out.md shows no ```bash block starting like docs/slurm/{name}"));
        if block != text {
            let line = block.lines().zip(text.lines()).position(|(a, b)| a != b).unwrap_or(0) + 1;
            panic!(
                "the ```bash block of {name} in docs/scale-out.md differs from docs/slurm/{name} \
                 from its line {line}: paste the file into the page again\n--- page:\n{block}--- file:\n{text}"
            );
        }
    }
    let nightly = &files[3].1;
    assert!(nightly.contains("\n#SBATCH --gres=gpu:1\n"), "the documented script asks for a GPU");
    assert!(nightly.contains("--shard \"${SLURM_ARRAY_TASK_ID}/${SHARDS}\""), "{nightly}");
}

/// The one-node cluster of `scripts/slurm-local.sh`, stopped (its jobs cancelled, its daemons
/// killed by their recorded pids, its folder removed) when this is dropped, also on a panic.
struct Cluster {
    dir: PathBuf,
    conf: String,
}

impl Cluster {
    fn script() -> PathBuf {
        common::repo().join("scripts/slurm-local.sh")
    }

    /// Starts it, or None (with the reason) where Slurm cannot be set up here.
    fn start() -> Option<Cluster> {
        let nanos = std::time::SystemTime::now().duration_since(std::time::UNIX_EPOCH).unwrap().subsec_nanos();
        let dir = std::env::temp_dir().join(format!("shiftbench-slurm-{}-{nanos}", std::process::id()));
        let t = Instant::now();
        let o = Command::new("bash").arg(Self::script()).arg("start").arg(&dir).stdin(Stdio::null()).output().unwrap();
        let err = String::from_utf8_lossy(&o.stderr);
        let why = || err.lines().rfind(|l| !l.trim().is_empty()).unwrap_or("").to_string();
        match o.status.code() {
            Some(0) => {}
            Some(77) => {
                common::skipped(TEST, &format!("Slurm cannot be set up here: {}", why()));
                return None;
            }
            Some(78) if std::env::var("CI").is_err() => {
                common::skipped(TEST, &format!("Slurm could not be installed: {}", why()));
                return None;
            }
            _ => panic!("scripts/slurm-local.sh start {} failed ({}):\n{err}", dir.display(), o.status),
        }
        let env = String::from_utf8_lossy(&o.stdout);
        let conf = env.lines().find_map(|l| l.strip_prefix("SLURM_CONF=")).expect("start prints SLURM_CONF");
        eprintln!("{TEST}: cluster up in {:.1} s: {}", t.elapsed().as_secs_f64(), err.trim());
        Some(Cluster { dir, conf: conf.to_string() })
    }

    fn cmd(&self, program: &str) -> Command {
        let mut c = Command::new(program);
        c.env("SLURM_CONF", &self.conf).stdin(Stdio::null());
        c
    }

    /// Submits `script` from `workdir` with `env` exported to the job; returns the job id.
    fn sbatch(&self, workdir: &Path, env: &[(&str, String)], args: &[&str], script: &Path) -> String {
        let mut c = self.cmd("sbatch");
        c.current_dir(workdir).args(["--parsable", "--export=ALL"]).args(args).arg(script);
        c.envs(env.iter().map(|(k, v)| (k, v)));
        let o = c.output().unwrap();
        assert!(o.status.success(), "sbatch {args:?} {}: {}", script.display(), String::from_utf8_lossy(&o.stderr));
        let id = String::from_utf8_lossy(&o.stdout).trim().split(';').next().unwrap().to_string();
        assert!(!id.is_empty() && id.bytes().all(|b| b.is_ascii_digit()), "sbatch printed {id:?}");
        id
    }

    /// `squeue`'s lines for a job (all tasks of an array): "id state reason". Empty once it ended.
    fn queued(&self, job: &str) -> Vec<String> {
        let o = self.cmd("squeue").args(["-h", "-j", job, "-o", "%i %T %r"]).output().unwrap();
        let out = String::from_utf8_lossy(&o.stdout).lines().map(str::to_string).collect();
        let err = String::from_utf8_lossy(&o.stderr);
        assert!(o.status.success() || err.contains("Invalid job id"), "squeue -j {job}: {err}");
        out
    }

    /// Polls squeue until every task of `job` has ended.
    fn wait(&self, job: &str, timeout: Duration, workdir: &Path) {
        let t = Instant::now();
        loop {
            let q = self.queued(job);
            if q.is_empty() {
                return;
            }
            if q.iter().any(|l| l.contains("DependencyNeverSatisfied")) {
                panic!("job {job} will never run: {q:?}\n{}", self.logs(workdir));
            }
            assert!(t.elapsed() < timeout, "job {job} still queued after {timeout:?}: {q:?}\n{}", self.logs(workdir));
            std::thread::sleep(Duration::from_millis(200));
        }
    }

    /// (array task id or "-", JobState, ExitCode) of every task of an ended job.
    fn states(&self, job: &str) -> Vec<(String, String, String)> {
        let o = self.cmd("scontrol").args(["show", "job", "-o", job]).output().unwrap();
        assert!(o.status.success(), "scontrol show job {job}: {}", String::from_utf8_lossy(&o.stderr));
        let field = |line: &str, key: &str| {
            line.split_whitespace().find_map(|f| f.strip_prefix(key)).unwrap_or("-").to_string()
        };
        let mut s: Vec<_> = String::from_utf8_lossy(&o.stdout)
            .lines()
            .filter(|l| !l.trim().is_empty())
            .map(|l| (field(l, "ArrayTaskId="), field(l, "JobState="), field(l, "ExitCode=")))
            .collect();
        s.sort();
        s
    }

    /// The jobs' output files and the daemons' last log lines, for a failure message.
    fn logs(&self, workdir: &Path) -> String {
        let mut s = String::new();
        let mut files: Vec<PathBuf> =
            std::fs::read_dir(workdir.join("logs")).map(|d| d.map(|e| e.unwrap().path()).collect()).unwrap_or_default();
        files.sort();
        files.push(self.dir.join("log/slurmctld.log"));
        files.push(self.dir.join("log/slurmd.log"));
        for f in files {
            let text = std::fs::read_to_string(&f).unwrap_or_default();
            let lines: Vec<&str> = text.lines().collect();
            s += &format!("--- {}\n{}\n", f.display(), lines[lines.len().saturating_sub(20)..].join("\n"));
        }
        s
    }
}

impl Drop for Cluster {
    fn drop(&mut self) {
        let o = Command::new("bash").arg(Self::script()).arg("stop").arg(&self.dir).stdin(Stdio::null()).output();
        match o {
            Ok(o) if o.status.success() => {}
            Ok(o) => eprintln!("{TEST}: slurm-local.sh stop failed: {}", String::from_utf8_lossy(&o.stderr)),
            Err(e) => eprintln!("{TEST}: slurm-local.sh stop did not run: {e}"),
        }
    }
}

fn lines(p: &Path) -> usize {
    std::fs::read(p).map(|b| b.iter().filter(|&&c| c == b'\n').count()).unwrap_or(0)
}

fn sorted(mut r: Vec<EvalResult>) -> Vec<EvalResult> {
    r.sort_by(|a, b| (&a.model, &a.suite).cmp(&(&b.model, &b.suite)));
    r
}

/// Where two lists of results differ: the fields, and the first few classes.
fn differences(a: &[EvalResult], b: &[EvalResult]) -> String {
    let mut s = String::new();
    if a.len() != b.len() {
        s += &format!("{} results against {}\n", a.len(), b.len());
    }
    for (x, y) in a.iter().zip(b) {
        let name = format!("{} on {}", x.model, x.suite);
        for (field, l, r) in [
            (
                "model/suite/weights",
                format!("{} {} {}", x.model, x.suite, x.weights),
                format!("{} {} {}", y.model, y.suite, y.weights),
            ),
            ("totals", format!("{:?}", x.totals), format!("{:?}", y.totals)),
            ("metrics", format!("{:?}", x.metrics), format!("{:?}", y.metrics)),
            ("problems", format!("{:?}", x.problems), format!("{:?}", y.problems)),
            ("error", format!("{:?}", x.error), format!("{:?}", y.error)),
        ] {
            if l != r {
                s += &format!("{name}: {field}: {l} | {r}\n");
            }
        }
        let classes: Vec<_> = x.per_class.iter().filter(|(k, v)| y.per_class.get(*k) != Some(*v)).take(5).collect();
        for (k, v) in classes {
            s += &format!("{name}: class {k}: {v:?} | {:?}\n", y.per_class.get(k));
        }
    }
    s
}

/// The merged result in `out` equals the unsharded one exactly, and the merge job's comparison
/// with it (BASELINE) moved no metric.
fn check_merged(out: &Path, whole: &[EvalResult], what: &str) -> Vec<EvalResult> {
    let merged = RunResult::read(&out.join("result.json")).unwrap();
    let info = merged.run.as_ref().unwrap();
    assert_eq!((info.kind.as_str(), info.merged_runs.len()), ("merge", SHARDS as usize), "{what}");
    let results = sorted(merged.results);
    if results != whole {
        let sigterm = results.iter().flat_map(|r| &r.problems).any(|p| p.reason.contains("(SIGTERM)"));
        panic!(
            "{what}: the merged result differs from the unsharded run's:\n{}{}",
            differences(&results, whole),
            if sigterm {
                "\nscancel's SIGTERM reached the model's worker processes (Slurm signals every process \
                 of a job, whatever its process group), and the batch in flight was logged as failed \
                 samples, which the resubmitted task keeps: the worker must leave SIGTERM/SIGINT to \
                 the harness (ignore them in host/worker/serve.rs), which stops after that batch"
            } else {
                ""
            }
        );
    }
    let cmp: serde_json::Value =
        serde_json::from_slice(&std::fs::read(out.join("report/compare.json")).unwrap()).unwrap();
    let pairs = cmp["pairs"].as_array().unwrap();
    assert_eq!(pairs.len(), MODELS.len(), "{what}: {cmp}");
    for m in pairs.iter().flat_map(|p| p["metrics"].as_array().unwrap()) {
        assert_eq!(
            (m["verdict"].as_str(), m["change"]["value"].as_f64()),
            (Some("unchanged"), Some(0.0)),
            "{what}: {m}"
        );
    }
    let comment = std::fs::read_to_string(out.join("report/comment.md")).unwrap();
    assert!(comment.contains("no regression"), "{what}: {comment}");
    results
}

#[test]
fn the_nightly_job_array_on_a_real_slurm_merges_to_the_unsharded_result() {
    let _one = ONE_CLUSTER.lock().unwrap_or_else(|e| e.into_inner());
    let t0 = Instant::now();
    if !cfg!(target_os = "linux") {
        common::skipped(TEST, "scripts/slurm-local.sh sets up Slurm on Linux only");
        return;
    }
    let Some(_) = common::shared_data(TEST) else { return };
    if common::plugin_lib_if_built("shiftbench_onnx", TEST).is_none() {
        return;
    }
    let repo = common::repo();
    let suite = repo.join("suites/imagenet-samples.yaml");
    let models: Vec<PathBuf> = MODELS.iter().map(|m| repo.join(format!("plugins/onnx/examples/{m}.yaml"))).collect();
    let bin = common::shiftbench_bin();
    // The job scripts take their lists space-separated.
    assert!(!repo.to_string_lossy().contains(' '), "the checkout's path has a space: {}", repo.display());
    let d = tempfile::tempdir().unwrap();
    let whole = d.path().join("whole");

    // The unsharded run: what both merges must equal, and the merge job's BASELINE.
    let mut c = Command::new(&bin);
    c.args(["run", "--suite"]).arg(&suite).arg("--out").arg(&whole);
    for m in &models {
        c.arg("--model").arg(m);
    }
    let o = c.output().unwrap();
    assert!(o.status.success(), "{}", String::from_utf8_lossy(&o.stderr));
    let whole_results = sorted(RunResult::read(&whole.join("result.json")).unwrap().results);
    let t_whole = t0.elapsed();

    // Declared after `d`, so dropped first: the jobs are cancelled before their folders go.
    let Some(cluster) = Cluster::start() else { return };
    let t_cluster = t0.elapsed();
    let night = repo.join("docs/slurm/nightly.sbatch");
    let merge = repo.join("docs/slurm/merge.sbatch");
    let env = |out: &Path| {
        vec![
            ("SHIFTBENCH", bin.to_string_lossy().into_owned()),
            ("OUT", out.to_string_lossy().into_owned()),
            ("SHARDS", SHARDS.to_string()),
            ("SUITES", suite.to_string_lossy().into_owned()),
            ("MODELS", models.iter().map(|m| m.to_string_lossy()).collect::<Vec<_>>().join(" ")),
            ("BASELINE", whole.join("result.json").to_string_lossy().into_owned()),
        ]
    };
    let array = format!("--array=0-{}", SHARDS - 1);
    let timeout = Duration::from_secs(300);
    let all_completed = |job: &str, workdir: &Path| {
        let s = cluster.states(job);
        assert!(
            !s.is_empty() && s.iter().all(|(_, st, ex)| st == "COMPLETED" && ex == "0:0"),
            "job {job}: {s:?}\n{}",
            cluster.logs(workdir)
        );
        s.len()
    };

    // 1. As docs/scale-out.md submits them: the array, and the merge depending on all of it.
    let work = d.path().join("night1");
    std::fs::create_dir_all(work.join("logs")).unwrap();
    let out1 = work.join("out");
    let a1 = cluster.sbatch(&work, &env(&out1), &[CPU_ONLY[0], CPU_ONLY[1], &array], &night);
    let m1 = cluster.sbatch(&work, &env(&out1), &[&format!("--dependency=afterok:{a1}")], &merge);
    cluster.wait(&m1, timeout, &work);
    assert_eq!(all_completed(&a1, &work), SHARDS as usize);
    all_completed(&m1, &work);
    for i in 0..SHARDS {
        assert!(work.join(format!("logs/shiftbench-{a1}_{i}.out")).is_file(), "{}", cluster.logs(&work));
    }
    let merged1 = check_merged(&out1, &whole_results, "the array merged");
    let t_night1 = t0.elapsed();

    // 2. The same with one task cancelled while it runs, then resubmitted alone.
    let work = d.path().join("night2");
    std::fs::create_dir_all(work.join("logs")).unwrap();
    let out2 = work.join("out");
    let shard = Some(Shard { index: KILLED, count: SHARDS });
    let logs: Vec<PathBuf> = MODELS.iter().map(|m| shard_log_path(&out2, m, SUITE, shard)).collect();
    let a2 = cluster.sbatch(&work, &env(&out2), &[CPU_ONLY[0], CPU_ONLY[1], &array], &night);
    let t = Instant::now();
    // A log's first line is its header: cancel at the first record.
    while logs.iter().all(|l| lines(l) < 2) {
        assert!(t.elapsed() < timeout, "no records in {logs:?}\n{}", cluster.logs(&work));
        std::thread::sleep(Duration::from_millis(20));
    }
    let o = cluster.cmd("scancel").arg(format!("{a2}_{KILLED}")).output().unwrap();
    assert!(o.status.success(), "scancel (had the task ended already?): {}", String::from_utf8_lossy(&o.stderr));
    cluster.wait(&a2, timeout, &work);
    let s = cluster.states(&a2);
    for (task, state, _) in &s {
        let want = if *task == KILLED.to_string() { "CANCELLED" } else { "COMPLETED" };
        assert_eq!(state, want, "task {task}: {s:?}\n{}", cluster.logs(&work));
    }
    assert!(
        !result_path(&out2, shard).exists(),
        "shard {KILLED} finished before it was cancelled: {s:?}\n{}",
        cluster.logs(&work)
    );
    let before: Vec<Vec<String>> = logs
        .iter()
        .map(|l| read_log_lenient(l).map(|(_, r, _)| r.into_iter().map(|r| r.id).collect()).unwrap_or_default())
        .collect();

    let a3 = cluster.sbatch(&work, &env(&out2), &[CPU_ONLY[0], CPU_ONLY[1], &format!("--array={KILLED}")], &night);
    let m2 = cluster.sbatch(&work, &env(&out2), &[&format!("--dependency=afterok:{a3}")], &merge);
    cluster.wait(&m2, timeout, &work);
    all_completed(&a3, &work);
    all_completed(&m2, &work);
    let expected = RunResult::read(&result_path(&out2, shard)).unwrap().results[0].totals.expected as usize;
    let mut after = Vec::new();
    for (log, kept) in logs.iter().zip(&before) {
        let (_, recs) = read_log(log).unwrap();
        let ids: Vec<String> = recs.into_iter().map(|r| r.id).collect();
        assert_eq!(ids.len(), expected, "{}: every sample of the shard once", log.display());
        assert_eq!(ids.iter().collect::<HashSet<_>>().len(), expected, "{}: no sample twice", log.display());
        // Resumed: what the cancelled task wrote is still the start of the log.
        assert_eq!(&ids[..kept.len()], &kept[..], "{}: the resubmitted task rewrote the log", log.display());
        after.push(ids.len());
    }
    let kept: Vec<usize> = before.iter().map(Vec::len).collect();
    assert!(kept.iter().sum::<usize>() < MODELS.len() * expected, "the cancelled task had finished: {kept:?}");
    let merged2 = check_merged(&out2, &whole_results, "the array with a task cancelled and resubmitted, merged");
    let t_night2 = t0.elapsed();

    eprintln!(
        "{TEST}: shard {KILLED} of {SHARDS} ({expected} samples) cancelled with {kept:?} records in its logs \
         ({MODELS:?}), {after:?} after its resubmission"
    );
    eprintln!("{TEST}: top-1 equal-wt / LAION-wt, %: unsharded | array merged | cancelled+resubmitted, merged");
    let pct = |r: &EvalResult| {
        format!(
            "{:.2} / {:.2}",
            r.metrics.top1_equal.unwrap().value * 100.0,
            r.metrics.top1_weighted.unwrap().value * 100.0
        )
    };
    for ((w, a), b) in whole_results.iter().zip(&merged1).zip(&merged2) {
        eprintln!("{TEST}:   {:<20} {} | {} | {}", w.model, pct(w), pct(a), pct(b));
    }
    eprintln!(
        "{TEST}: times: unsharded run {:.1} s, cluster start {:.1} s, array+merge {:.1} s, \
         with a cancel+resubmit {:.1} s; total {:.1} s",
        t_whole.as_secs_f64(),
        (t_cluster - t_whole).as_secs_f64(),
        (t_night1 - t_cluster).as_secs_f64(),
        (t_night2 - t_night1).as_secs_f64(),
        t0.elapsed().as_secs_f64()
    );
}

/// Three LAION-style caption files from the demo's captions (every third row each).
fn caption_files(dir: &Path) {
    use arrow_array::{ArrayRef, Int64Array, RecordBatch, StringArray};
    use arrow_schema::{DataType, Field, Schema};
    use std::sync::Arc;
    let rows: Vec<Vec<String>> = shiftbench::data::demo::DEMO_CAPTIONS
        .lines()
        .skip(1)
        .map(|l| l.split('\t').map(String::from).collect())
        .collect();
    std::fs::create_dir_all(dir).unwrap();
    let schema = Arc::new(Schema::new(vec![
        Field::new("SAMPLE_ID", DataType::Int64, false),
        Field::new("URL", DataType::Utf8, false),
        Field::new("TEXT", DataType::Utf8, true),
        Field::new("NSFW", DataType::Utf8, true),
    ]));
    for f in 0..3 {
        let mine: Vec<&Vec<String>> = rows.iter().skip(f).step_by(3).collect();
        let cols: Vec<ArrayRef> = vec![
            Arc::new(Int64Array::from(mine.iter().map(|r| r[0].parse::<i64>().unwrap()).collect::<Vec<_>>())),
            Arc::new(StringArray::from(mine.iter().map(|r| r[1].clone()).collect::<Vec<_>>())),
            Arc::new(StringArray::from(mine.iter().map(|r| r[2].clone()).collect::<Vec<_>>())),
            Arc::new(StringArray::from(mine.iter().map(|r| r[3].clone()).collect::<Vec<_>>())),
        ];
        let path = dir.join(format!("part-{f:05}.parquet"));
        let mut w =
            parquet::arrow::ArrowWriter::try_new(std::fs::File::create(path).unwrap(), schema.clone(), None).unwrap();
        w.write(&RecordBatch::try_new(schema.clone(), cols).unwrap()).unwrap();
        w.close().unwrap();
    }
}

#[test]
fn the_laionet_build_array_on_a_real_slurm_equals_an_unsharded_build() {
    let _one = ONE_CLUSTER.lock().unwrap_or_else(|e| e.into_inner());
    if !cfg!(target_os = "linux") {
        common::skipped(TEST, "scripts/slurm-local.sh sets up Slurm on Linux only");
        return;
    }
    if common::plugin_lib_if_built("shiftbench_example", TEST).is_none() {
        return;
    }
    let repo = common::repo();
    let bin = common::shiftbench_bin();
    let d = tempfile::tempdir().unwrap();
    let captions = d.path().join("captions");
    caption_files(&captions);
    let whole = d.path().join("whole");
    let o = Command::new(&bin)
        .args(["laionet", "build", "--encoder", "example", "--threshold", "0.3", "--captions"])
        .arg(&captions)
        .arg("--out")
        .arg(&whole)
        .output()
        .unwrap();
    assert!(o.status.success(), "{}", String::from_utf8_lossy(&o.stderr));

    let Some(cluster) = Cluster::start() else { return };
    let work = d.path().join("work");
    std::fs::create_dir_all(work.join("logs")).unwrap();
    let out = work.join("out");
    let env = vec![
        ("SHIFTBENCH", bin.to_string_lossy().into_owned()),
        ("CAPTIONS", captions.to_string_lossy().into_owned()),
        ("OUT", out.to_string_lossy().into_owned()),
        ("SHARDS", "3".to_string()),
        ("ENCODER", "example".to_string()),
        ("BUILD_ARGS", "--threshold 0.3".to_string()),
    ];
    let build = repo.join("docs/slurm/laionet-build.sbatch");
    let assemble = repo.join("docs/slurm/laionet-assemble.sbatch");
    let a = cluster.sbatch(&work, &env, &[CPU_ONLY[0], CPU_ONLY[1], "--array=0-2"], &build);
    let m = cluster.sbatch(&work, &env, &[&format!("--dependency=afterok:{a}")], &assemble);
    cluster.wait(&m, Duration::from_secs(300), &work);
    for job in [&a, &m] {
        let s = cluster.states(job);
        assert!(
            !s.is_empty() && s.iter().all(|(_, st, ex)| st == "COMPLETED" && ex == "0:0"),
            "job {job}: {s:?}\n{}",
            cluster.logs(&work)
        );
    }
    for f in ["candidates.parquet", "laionet.parquet", "urls.txt", "class_counts.csv", "laionet.yaml"] {
        assert_eq!(std::fs::read(out.join(f)).unwrap(), std::fs::read(whole.join(f)).unwrap(), "{f}");
    }
    let parts = std::fs::read_dir(out.join("parts")).unwrap().count();
    assert_eq!(parts, 6, "a part and its sidecar per caption file");
}
