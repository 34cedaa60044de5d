//! The terminal tables of a run: a row per model and suite (counts and the four recalls), the
//! models x suites summary with drops, ordering models by a column (`--sort`: [`sorted_run`]
//! reorders a run once, and every report of it follows), and the lines that list failed and
//! missing samples.

use comfy_table::{presets::UTF8_FULL_CONDENSED, Cell, CellAlignment, ContentArrangement, Table};

use crate::results::metrics::{Estimate, Headline};
use crate::results::result::{EvalResult, Problem, RunResult};
use crate::results::robustness::{ranks, EffectiveRobustness, Metric, ModelRobustness, MIN_MODELS};

/// `80.42 ± 0.17` (percent).
pub fn fmt_est(e: Option<Estimate>) -> String {
    match e {
        Some(e) => format!("{:.2} ± {:.2}", 100.0 * e.value, 100.0 * e.se),
        None => "n/a".into(),
    }
}

/// The columns of a run's results table, in the terminal and on the report page.
pub const RESULTS_HEADER: [&str; 11] = [
    "model",
    "suite",
    "expected",
    "evaluated",
    "failed",
    "missing",
    "classes",
    "top-1 equal-wt",
    "top-5 equal-wt",
    "top-1 LAION-wt",
    "top-5 LAION-wt",
];

/// The terminal table: a row per model and suite with its sample counts (expected, evaluated,
/// failed, missing), the classes present and the four recalls (percent, ± one standard error).
pub fn table(results: &[EvalResult]) -> Table {
    let mut t = Table::new();
    t.load_preset(UTF8_FULL_CONDENSED).set_content_arrangement(ContentArrangement::Disabled);
    t.set_header(RESULTS_HEADER.to_vec());
    let right = |s: String| Cell::new(s).set_alignment(CellAlignment::Right);
    for m in models_in_order(results) {
        for r in results.iter().filter(|r| r.model == m) {
            let x = &r.metrics;
            let mut row = vec![
                Cell::new(&r.model),
                Cell::new(&r.suite),
                right(r.totals.expected.to_string()),
                right(r.totals.evaluated.to_string()),
                right(r.totals.failed.to_string()),
                right(r.totals.missing.to_string()),
                right(r.classes_present.to_string()),
            ];
            if r.error.is_some() {
                row.extend([Cell::new("ERROR (see below)"), Cell::new(""), Cell::new(""), Cell::new("")]);
            } else {
                row.extend([x.top1_equal, x.top5_equal, x.top1_weighted, x.top5_weighted].map(|e| right(fmt_est(e))));
            }
            t.add_row(row);
        }
    }
    t
}

/// Models in order of first appearance.
pub fn models_in_order(results: &[EvalResult]) -> Vec<&str> {
    let mut models: Vec<&str> = Vec::new();
    for r in results {
        if !models.contains(&r.model.as_str()) {
            models.push(&r.model);
        }
    }
    models
}

/// Suites in order of first appearance; the first is the reference the others are compared with.
pub fn suites_in_order(results: &[EvalResult]) -> Vec<&str> {
    let mut suites: Vec<&str> = Vec::new();
    for r in results {
        if !suites.contains(&r.suite.as_str()) {
            suites.push(&r.suite);
        }
    }
    suites
}

/// One column of the summary table: its header and each model's value.
struct Column {
    header: String,
    /// Short names `--sort` also accepts.
    aliases: Vec<String>,
    /// Per model (in `models_in_order`), the estimate, or None.
    values: Vec<Option<Estimate>>,
    /// A drop: printed with a sign.
    signed: bool,
    /// Per model, the text shown instead of the value (ranks, intervals).
    texts: Option<Vec<String>>,
}

/// `+1.23 [-0.40, +2.87]`: an effective robustness and its interval, in percentage points.
pub fn fmt_robustness(r: &ModelRobustness) -> String {
    match (r.ci_low, r.ci_high) {
        (Some(lo), Some(hi)) => format!("{:+.2} [{:+.2}, {:+.2}]", 100.0 * r.value, 100.0 * lo, 100.0 * hi),
        _ => format!("{:+.2} [n/a]", 100.0 * r.value),
    }
}

fn summary_columns(results: &[EvalResult], er: &[EffectiveRobustness]) -> Vec<Column> {
    let models = models_in_order(results);
    let suites = suites_in_order(results);
    let get = |m: &str, s: &str| results.iter().find(|r| r.model == m && r.suite == s).map(|r| r.metrics);
    let mut cols = Vec::new();
    let reference = suites[0];
    let mut first_ranks: Vec<Option<usize>> = Vec::new();
    for (si, s) in suites.iter().enumerate() {
        cols.push(Column {
            header: format!("{s}\ntop-1 equal-wt"),
            aliases: vec![s.to_string()],
            values: models.iter().map(|m| get(m, s).and_then(|h| h.top1_equal)).collect(),
            signed: false,
            texts: None,
        });
        cols.push(Column {
            header: format!("{s}\ntop-1 LAION-wt"),
            aliases: vec![format!("{s}:laion")],
            values: models.iter().map(|m| get(m, s).and_then(|h| h.top1_weighted)).collect(),
            signed: false,
            texts: None,
        });
        if models.len() > 1 {
            // 1 = best top-1 equal-weighted; after the first suite, the places gained (+) or lost.
            let top1: Vec<Option<f64>> =
                models.iter().map(|m| get(m, s).and_then(|h| h.top1_equal).map(|e| e.value)).collect();
            let here = ranks(&top1);
            if si == 0 {
                first_ranks = here.clone();
            }
            let texts = here
                .iter()
                .zip(&first_ranks)
                .map(|(r, f)| match (r, f) {
                    (None, _) => "n/a".to_string(),
                    (Some(r), Some(f)) if si > 0 => match *f as i64 - *r as i64 {
                        0 => format!("{r} (=)"),
                        d => format!("{r} ({d:+})"),
                    },
                    (Some(r), _) => r.to_string(),
                })
                .collect();
            cols.push(Column {
                header: if si == 0 { format!("rank\n{s}") } else { format!("rank {s}\n(vs {reference})") },
                aliases: vec![],
                values: here.iter().map(|r| r.map(|r| Estimate { value: r as f64, se: 0.0 })).collect(),
                signed: false,
                texts: Some(texts),
            });
        }
        if si == 0 {
            continue;
        }
        let drop = |pick: fn(&Headline) -> Option<Estimate>| -> Vec<Option<Estimate>> {
            models
                .iter()
                .map(|m| match (get(m, reference).and_then(|h| pick(&h)), get(m, s).and_then(|h| pick(&h))) {
                    (Some(a), Some(b)) => Some(a.minus(&b)),
                    _ => None,
                })
                .collect()
        };
        let first = si == 1;
        cols.push(Column {
            header: format!("drop {reference}\n-> {s} equal-wt"),
            aliases: if first { vec!["drop".into(), format!("drop:{s}")] } else { vec![format!("drop:{s}")] },
            values: drop(|h| h.top1_equal),
            signed: true,
            texts: None,
        });
        cols.push(Column {
            header: format!("drop {reference}\n-> {s} LAION-wt"),
            aliases: if first {
                vec!["drop:laion".into(), format!("drop:{s}:laion")]
            } else {
                vec![format!("drop:{s}:laion")]
            },
            values: drop(|h| h.top1_weighted),
            signed: true,
            texts: None,
        });
        for e in er.iter().filter(|e| e.x_suite == reference && e.y_suite == *s) {
            let Some(metric) = e.metric() else { continue };
            let laion = metric == Metric::Top1Weighted;
            let mut aliases = vec![format!("er:{s}{}", if laion { ":laion" } else { "" })];
            if first {
                aliases.insert(0, if laion { "er:laion".into() } else { "er".into() });
            }
            let texts = models
                .iter()
                .map(|m| match e.models.get(*m) {
                    Some(r) => fmt_robustness(r),
                    None if e.left_out.iter().any(|l| l.model == *m) => "left out".into(),
                    None if e.fit.is_none() => "no fit".into(),
                    None => "n/a".into(),
                })
                .collect();
            cols.push(Column {
                header: format!("eff. robustness {reference}\n-> {s} {}", metric.label()),
                aliases,
                values: models.iter().map(|m| e.models.get(*m).map(|r| Estimate { value: r.value, se: 0.0 })).collect(),
                signed: true,
                texts: Some(texts),
            });
        }
    }
    cols
}

/// How to order models: a summary-table column (its header, a suite name for that suite's
/// equal-weighted top-1, `<suite>:laion`, `drop`, `drop:laion`, `drop:<suite>`,
/// `drop:<suite>:laion`) or `model`, optionally followed by `:asc` or `:desc`. Numbers sort
/// descending by default (best, or largest drop, first), names ascending; models without a
/// value go last.
pub fn sort_models(results: &[EvalResult], key: &str) -> Result<Vec<String>, String> {
    sort_models_with(results, &[], key)
}

/// [`sort_models`] with the effective robustness columns too (`er`, `er:laion`, `er:<suite>`,
/// `er:<suite>:laion`: most robust first).
pub fn sort_models_with(results: &[EvalResult], er: &[EffectiveRobustness], key: &str) -> Result<Vec<String>, String> {
    let (key, dir) = match key.rsplit_once(':') {
        Some((k, d)) if d.eq_ignore_ascii_case("asc") || d.eq_ignore_ascii_case("desc") => {
            (k, Some(d.eq_ignore_ascii_case("asc")))
        }
        _ => (key, None),
    };
    let models = models_in_order(results);
    let mut idx: Vec<usize> = (0..models.len()).collect();
    if key.eq_ignore_ascii_case("model") {
        idx.sort_by(|&a, &b| models[a].cmp(models[b]));
        if dir == Some(false) {
            idx.reverse();
        }
        return Ok(idx.into_iter().map(|i| models[i].to_string()).collect());
    }
    let cols = summary_columns(results, er);
    let col = cols
        .iter()
        .find(|c| {
            c.header.replace('\n', " ").eq_ignore_ascii_case(key)
                || c.aliases.iter().any(|a| a.eq_ignore_ascii_case(key))
        })
        .ok_or_else(|| {
            let mut names: Vec<String> = vec!["model".into()];
            for c in &cols {
                names.extend(c.aliases.iter().cloned());
            }
            format!("--sort {key:?}: no such column (use one of: {}, or a column header)", names.join(", "))
        })?;
    let ascending = dir.unwrap_or(false);
    idx.sort_by(|&a, &b| match (col.values[a], col.values[b]) {
        (Some(x), Some(y)) => {
            let o = x.value.total_cmp(&y.value);
            if ascending {
                o
            } else {
                o.reverse()
            }
        }
        (Some(_), None) => std::cmp::Ordering::Less,
        (None, Some(_)) => std::cmp::Ordering::Greater,
        (None, None) => std::cmp::Ordering::Equal,
    });
    Ok(idx.into_iter().map(|i| models[i].to_string()).collect())
}

/// Checks `--sort key` before a run, against the columns a run of `models` models on suites
/// named `suites` (in order) can have: the keys [`sort_models_with`] accepts and the column
/// headers. A key for effective robustness (`er...`) needs two suites or more and
/// [`MIN_MODELS`] models or more, and says so. Passing here does not promise the column: a fit
/// can still fail on the numbers, which [`sorted_run`] then reports.
pub fn check_sort_key(key: &str, suites: &[String], models: usize) -> Result<(), String> {
    let bare = match key.rsplit_once(':') {
        Some((k, d)) if d.eq_ignore_ascii_case("asc") || d.eq_ignore_ascii_case("desc") => k,
        _ => key,
    };
    let is_er = bare.eq_ignore_ascii_case("er") || bare.to_ascii_lowercase().starts_with("er:");
    if is_er && suites.len() < 2 {
        return Err(format!(
            "--sort {key:?}: effective robustness needs two suites or more, and this run has {} ({})",
            suites.len(),
            suites.join(", ")
        ));
    }
    if is_er && models < MIN_MODELS {
        return Err(format!(
            "--sort {key:?}: effective robustness needs {MIN_MODELS} models or more (a fit over them), and this run has {models}"
        ));
    }
    let Some(reference) = suites.first() else { return Ok(()) };
    let mut keys: Vec<String> = vec!["model".into()];
    let mut headers: Vec<String> = Vec::new();
    for (si, s) in suites.iter().enumerate() {
        keys.extend([s.clone(), format!("{s}:laion")]);
        headers.extend([format!("{s} top-1 equal-wt"), format!("{s} top-1 LAION-wt")]);
        if models > 1 {
            headers.push(if si == 0 { format!("rank {s}") } else { format!("rank {s} (vs {reference})") });
        }
        if si == 0 {
            continue;
        }
        if si == 1 {
            keys.extend(["drop", "drop:laion", "er", "er:laion"].map(String::from));
        }
        keys.extend([format!("drop:{s}"), format!("drop:{s}:laion"), format!("er:{s}"), format!("er:{s}:laion")]);
        for w in ["equal-wt", "LAION-wt"] {
            headers.push(format!("drop {reference} -> {s} {w}"));
            headers.push(format!("eff. robustness {reference} -> {s} {w}"));
        }
    }
    if keys.iter().chain(&headers).any(|k| k.eq_ignore_ascii_case(bare)) {
        return Ok(());
    }
    Err(format!("--sort {key:?}: no such column (use one of: {}, or a column header)", keys.join(", ")))
}

/// `results` reordered model by model as `order` says (models not in `order` keep their place
/// after those that are).
pub fn ordered(results: &[EvalResult], order: &[String]) -> Vec<EvalResult> {
    let mut out: Vec<EvalResult> = Vec::with_capacity(results.len());
    for m in order {
        out.extend(results.iter().filter(|r| &r.model == m).cloned());
    }
    out.extend(results.iter().filter(|r| !order.contains(&r.model)).cloned());
    out
}

/// `run` with its results reordered model by model as `--sort key` says ([`sort_models_with`],
/// effective robustness included): the one order every report of the run (terminal, text,
/// Markdown, CSV, JSON, JUnit, plots, the page) then follows. Each model keeps its suites in their
/// order (a run has every model on every suite, so the first suite stays the reference).
pub fn sorted_run(mut run: RunResult, key: &str) -> Result<RunResult, String> {
    let order = sort_models_with(&run.results, &run.effective_robustness, key)?;
    run.results = ordered(&run.results, &order);
    Ok(run)
}

/// Fits `t` to a terminal `width` columns wide (cells wrap); `None` keeps its full width, as
/// files and pipes get it.
pub fn fit(t: &mut Table, width: Option<u16>) {
    if let Some(w) = width {
        t.set_content_arrangement(ContentArrangement::Dynamic).set_width(w);
    }
}

/// The models x suites table: one row per model; for each suite its equal-weighted and
/// LAION-weighted top-1 recall, and for each suite after the first the drop from the first
/// (reference minus suite: positive means worse), under both weightings. Percent, ± one
/// standard error. Needs two suites or more to say anything the main table does not.
pub fn summary_table(results: &[EvalResult]) -> Table {
    summary_table_with(results, &[])
}

/// [`summary_table`] with each model's rank per suite (1 = best top-1 equal-weighted; after the
/// first suite, the places it gained or lost) and, from `er`, its effective robustness with the
/// bootstrap interval, in percentage points.
pub fn summary_table_with(results: &[EvalResult], er: &[EffectiveRobustness]) -> Table {
    let (header, rows) = summary_cells_with(results, er);
    let mut t = Table::new();
    t.load_preset(UTF8_FULL_CONDENSED).set_content_arrangement(ContentArrangement::Disabled);
    t.set_header(header);
    for cells in rows {
        let mut row = Vec::new();
        for (i, (text, _)) in cells.into_iter().enumerate() {
            row.push(if i == 0 { Cell::new(text) } else { Cell::new(text).set_alignment(CellAlignment::Right) });
        }
        t.add_row(row);
    }
    t
}

/// A row of [`summary_cells`]: each cell's text and value.
pub type SummaryRow = Vec<(String, Option<f64>)>;

/// The cells of [`summary_table`], for other sinks (the HTML page): the header (`model`, then a
/// column per suite and drop, lines split by `\n`) and a row per model: its name, then each
/// column's text with its value (a fraction, for sorting; None where the text is `n/a`).
pub fn summary_cells(results: &[EvalResult]) -> (Vec<String>, Vec<SummaryRow>) {
    summary_cells_with(results, &[])
}

/// [`summary_cells`] of [`summary_table_with`]: ranks (their value the rank) and effective
/// robustness (its value a fraction) included.
pub fn summary_cells_with(results: &[EvalResult], er: &[EffectiveRobustness]) -> (Vec<String>, Vec<SummaryRow>) {
    let cols = summary_columns(results, er);
    let mut header = vec!["model".to_string()];
    header.extend(cols.iter().map(|c| c.header.clone()));
    let mut rows = Vec::new();
    for (mi, m) in models_in_order(results).iter().enumerate() {
        let mut row = vec![(m.to_string(), None)];
        for c in &cols {
            let text = match (&c.texts, c.values[mi], c.signed) {
                (Some(texts), _, _) => texts[mi].clone(),
                (None, Some(e), true) => format!("{:+.2} ± {:.2}", 100.0 * e.value, 100.0 * e.se),
                (None, v, _) => fmt_est(v),
            };
            row.push((text, c.values[mi].map(|e| e.value)));
        }
        rows.push(row);
    }
    (header, rows)
}

/// Lines describing failed and missing samples: per suite (once, when every model met the same
/// problems, as they do when images cannot be read) the totals, the classes affected and the
/// first `limit` samples with their reasons, then a count of the rest.
pub fn problem_lines(results: &[EvalResult], limit: usize) -> Vec<String> {
    let mut out = Vec::new();
    for suite in suites_in_order(results) {
        for r in results.iter().filter(|r| r.suite == suite) {
            if let Some(e) = &r.error {
                out.push(format!("{} on {}: ERROR: {e}", r.model, r.suite));
                if r.not_evaluated() > 0 {
                    out.push(format!(
                        "  {} of {} samples were not evaluated; run the same command again to retry them",
                        r.not_evaluated(),
                        r.totals.expected
                    ));
                }
            }
        }
        let rs: Vec<&EvalResult> = results.iter().filter(|r| r.suite == suite && !r.problems.is_empty()).collect();
        if rs.is_empty() {
            continue;
        }
        let all_models = results.iter().filter(|r| r.suite == suite).count();
        let same = rs.len() == all_models && rs.iter().all(|r| r.problems == rs[0].problems);
        let groups: Vec<(String, &EvalResult)> = if same && all_models > 1 {
            vec![(format!("every model on {suite}"), rs[0])]
        } else {
            rs.iter().map(|r| (format!("{} on {suite}", r.model), *r)).collect()
        };
        for (who, r) in groups {
            out.push(format!(
                "{who}: {} failed, {} missing of {} samples",
                r.totals.failed, r.totals.missing, r.totals.expected
            ));
            let classes: Vec<String> = r
                .per_class
                .iter()
                .filter(|(_, c)| c.status.failed + c.status.missing > 0)
                .map(|(w, c)| match (c.status.failed, c.status.missing) {
                    (f, 0) => format!("{w} {f} failed"),
                    (0, m) => format!("{w} {m} missing"),
                    (f, m) => format!("{w} {f} failed + {m} missing"),
                })
                .collect();
            let shown = classes.len().min(limit);
            out.push(format!(
                "  by class: {}{}",
                classes[..shown].join(", "),
                if classes.len() > shown { format!(", ... ({} classes in all)", classes.len()) } else { String::new() }
            ));
            // The batch in flight when a model stopped failed with the error above: count it once.
            let stopped = r.problems.iter().filter(|p| Some(&p.reason) == r.error.as_ref()).count();
            if stopped > 0 {
                out.push(format!(
                    "  {stopped} samples in the batch in flight failed with that ERROR (ids in the JSON result)"
                ));
            }
            let others: Vec<&Problem> = r.problems.iter().filter(|p| Some(&p.reason) != r.error.as_ref()).collect();
            for p in others.iter().take(limit) {
                out.push(format!("  {}: {}", p.id, p.reason));
            }
            if others.len() > limit {
                out.push(format!("  ... and {} more (all listed in the JSON result)", others.len() - limit));
            }
        }
    }
    out
}

/// Every metric of every result with six decimals (fractions, not percent): `score --precise`.
pub fn precise_lines(results: &[EvalResult]) -> Vec<String> {
    let f = |e: Option<Estimate>| e.map(|e| format!("{:.6} (se {:.6})", e.value, e.se)).unwrap_or("n/a".into());
    results
        .iter()
        .map(|r| {
            format!(
                "{} on {} ({} classes): top-1 equal {}, top-5 equal {}, top-1 weighted {}, top-5 weighted {}",
                r.model,
                r.suite,
                r.classes_present,
                f(r.metrics.top1_equal),
                f(r.metrics.top5_equal),
                f(r.metrics.top1_weighted),
                f(r.metrics.top5_weighted)
            )
        })
        .collect()
}
