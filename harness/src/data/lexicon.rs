//! The dictionaries `shiftbench laionet build` labels captions with: the lemma dictionary (lemma
//! -> wnid) and the class queries (wnid -> the text captions are compared with).
//!
//! Defaults are the paper's (Shirali & Hardt, ICLR 2024; alishiraliGit/eval-on-laion), shipped in
//! `suites/laionet/` and built into the binary:
//!
//! - `lemma2wnid.tsv`: the lemmas that occur in exactly one ILSVRC synset, 1,825 lemmas for 995
//!   wnids (`lemma2wnid(unique_in_ilsvrc_ignored_empty_wnids).pkl`), case as in WordNet.
//! - `name_def_queries.tsv`: per ImageNet-1k wnid, `<name> which is <definition>` (`name_def`).
//!
//! `--lemmas` takes a `lemma`/`wnid` table, or a list of lemmas per class (a table with `wnid` and
//! `lemmas` columns, or lines `wnid: lemma, lemma` as the paper's `ILSVRC2012_synsets.txt`, or
//! `wnid<TAB>lemma, lemma`), from which a dictionary is derived by the paper's rule: a lemma
//! listed for more than one class is dropped, and classes left without a lemma are reported.

use std::collections::{BTreeMap, BTreeSet};
use std::path::Path;

use anyhow::{bail, Context, Result};

use crate::data::table::read_map;
use crate::util::digest::pairs_digest;
use crate::util::safeio;

/// The paper's lemma dictionary (`lemma<TAB>wnid`, with a header).
pub const DEFAULT_LEMMAS: &str = include_str!("../../../suites/laionet/lemma2wnid.tsv");
/// The paper's `name_def` queries (`wnid, name, definition, query`, with a header).
pub const DEFAULT_QUERIES: &str = include_str!("../../../suites/laionet/name_def_queries.tsv");

/// The paper's wnid for Siberian husky, and ImageNet-1k's.
pub const PAPER_HUSKY: &str = "n02112837";
pub const IMAGENET_HUSKY: &str = "n02110185";

/// A lemma dictionary: each lemma names one wnid.
#[derive(Debug, Clone)]
pub struct Lemmas {
    /// (lemma, wnid), in the order read (lemmas unique).
    pub entries: Vec<(String, String)>,
    /// Where it came from (`the paper's default` or a path).
    pub source: String,
    /// What deriving it noticed (dropped lemmas, classes left empty), one sentence each.
    pub notes: Vec<String>,
}

impl Lemmas {
    /// The paper's default dictionary, with its one wnid that is not ImageNet-1k's mapped to
    /// ImageNet-1k's: the paper's class list gives Siberian husky as n02112837 where ImageNet-1k
    /// (and the query table) has n02110185 (the remap `suites/laionet.yaml` applies too).
    pub fn default_paper() -> Lemmas {
        let mut entries =
            parse_pairs(DEFAULT_LEMMAS, "the built-in lemma dictionary").expect("the shipped table parses");
        for (_, w) in entries.iter_mut() {
            if w == PAPER_HUSKY {
                *w = IMAGENET_HUSKY.into();
            }
        }
        Lemmas { entries, source: "the paper's lemma dictionary (suites/laionet/lemma2wnid.tsv)".into(), notes: vec![] }
    }

    /// A dictionary from `path` (see the module doc for the forms it takes).
    pub fn load(path: &Path) -> Result<Lemmas> {
        let text = safeio::read_text_bounded(path, safeio::MAX_TABLE_BYTES)
            .with_context(|| format!("cannot read the lemma table {}", path.display()))?;
        let first = text.lines().next().unwrap_or_default();
        let header: Vec<&str> = first.split(['\t', ',']).map(str::trim).collect();
        let source = path.display().to_string();
        if header.contains(&"lemma") && header.contains(&"wnid") {
            let rows = read_map(path, "lemma", "wnid")?;
            let mut seen: BTreeMap<String, (usize, String)> = BTreeMap::new();
            let mut entries = Vec::new();
            for (line, lemma, wnid) in rows {
                if wnid.is_empty() {
                    bail!("{}:{line}: lemma {lemma:?} has no wnid", path.display());
                }
                if let Some((l0, w0)) = seen.get(&lemma) {
                    if *w0 != wnid {
                        bail!(
                            "{}: lemma {lemma:?} names {w0} (line {l0}) and {wnid} (line {line}): a dictionary gives \
                             each lemma one class (a table of lemma lists per class drops such lemmas)",
                            path.display()
                        );
                    }
                    continue;
                }
                seen.insert(lemma.clone(), (line, wnid.clone()));
                entries.push((lemma, wnid));
            }
            return Ok(Lemmas { entries, source, notes: vec![] });
        }
        let lists = if header.contains(&"wnid") && header.contains(&"lemmas") {
            read_map(path, "wnid", "lemmas")?.into_iter().map(|(_, w, l)| (w, split_list(&l))).collect()
        } else {
            parse_lists(&text, path)?
        };
        Ok(unique_lemmas(&lists, source))
    }

    /// A digest of the dictionary (what a build's parts are keyed by).
    pub fn digest(&self) -> String {
        pairs_digest(self.entries.iter().map(|(l, w)| (l.as_str(), w.as_str())))
    }

    /// The wnids the dictionary names, sorted.
    pub fn wnids(&self) -> Vec<String> {
        self.entries.iter().map(|(_, w)| w.clone()).collect::<BTreeSet<_>>().into_iter().collect()
    }
}

fn split_list(s: &str) -> Vec<String> {
    s.split(',').map(str::trim).filter(|l| !l.is_empty()).map(String::from).collect()
}

/// `lemma<TAB>wnid` lines under a header.
fn parse_pairs(text: &str, what: &str) -> Result<Vec<(String, String)>> {
    let mut out = Vec::new();
    for (i, line) in text.lines().enumerate().skip(1) {
        if line.trim().is_empty() {
            continue;
        }
        let (l, w) = line.split_once('\t').with_context(|| format!("{what}:{}: expected lemma<TAB>wnid", i + 1))?;
        out.push((l.to_string(), w.trim().to_string()));
    }
    Ok(out)
}

/// Lines `wnid: lemma, lemma` or `wnid<TAB>lemma, lemma`; a first line that does not start with
/// a wnid is a header. The lists of a wnid given twice are joined.
fn parse_lists(text: &str, path: &Path) -> Result<Vec<(String, Vec<String>)>> {
    let mut out: Vec<(String, Vec<String>)> = Vec::new();
    for (i, line) in text.lines().enumerate() {
        if line.trim().is_empty() {
            continue;
        }
        let split = line.split_once('\t').or_else(|| line.split_once(": "));
        let ok = split.filter(|(w, _)| shiftbench_model_config::is_wnid(w.trim()));
        let Some((w, list)) = ok else {
            if i == 0 {
                continue; // a header such as `id: lemmas`
            }
            bail!(
                "{}:{}: expected `wnid: lemma, lemma` or `wnid<TAB>lemma, lemma` (or a table with lemma and wnid \
                 columns, or wnid and lemmas columns)",
                path.display(),
                i + 1
            );
        };
        let w = w.trim().to_string();
        match out.iter_mut().find(|(x, _)| *x == w) {
            Some((_, l)) => l.extend(split_list(list)),
            None => out.push((w, split_list(list))),
        }
    }
    if out.is_empty() {
        bail!("{}: no classes with lemmas", path.display());
    }
    Ok(out)
}

/// The paper's rule: keep the lemmas listed for exactly one class (a lemma listed twice for the
/// same class counts once); classes left without a lemma are reported.
pub fn unique_lemmas(lists: &[(String, Vec<String>)], source: String) -> Lemmas {
    let mut classes_of: BTreeMap<&str, BTreeSet<&str>> = BTreeMap::new();
    for (w, ls) in lists {
        for l in ls {
            classes_of.entry(l.as_str()).or_default().insert(w.as_str());
        }
    }
    let mut entries = Vec::new();
    let mut emptied = Vec::new();
    let mut done: BTreeSet<&str> = BTreeSet::new();
    for (w, ls) in lists {
        let before = entries.len();
        for l in ls {
            if classes_of[l.as_str()].len() == 1 && done.insert(l.as_str()) {
                entries.push((l.clone(), w.clone()));
            }
        }
        if entries.len() == before && !entries.iter().any(|(_, x)| x == w) {
            emptied.push(w.clone());
        }
    }
    let shared: Vec<&str> = classes_of.iter().filter(|(_, c)| c.len() > 1).map(|(l, _)| *l).collect();
    let mut notes = Vec::new();
    if !shared.is_empty() {
        let show: Vec<String> = shared.iter().take(8).map(|l| format!("{l:?}")).collect();
        notes.push(format!(
            "{} lemmas are listed for more than one class and were dropped ({}{})",
            shared.len(),
            show.join(", "),
            if shared.len() > 8 { ", ..." } else { "" }
        ));
    }
    emptied.sort();
    emptied.dedup();
    if !emptied.is_empty() {
        notes.push(format!(
            "{} classes have no lemma of their own and can match no caption: {}",
            emptied.len(),
            emptied.join(", ")
        ));
    }
    Lemmas { entries, source, notes }
}

/// The query text of each class.
#[derive(Debug, Clone)]
pub struct Queries {
    pub by_wnid: BTreeMap<String, String>,
    pub source: String,
}

impl Queries {
    /// The paper's `name_def` queries.
    pub fn default_paper() -> Queries {
        let mut by_wnid = BTreeMap::new();
        for line in DEFAULT_QUERIES.lines().skip(1) {
            let cols: Vec<&str> = line.split('\t').collect();
            if cols.len() == 4 {
                by_wnid.insert(cols[0].to_string(), cols[3].to_string());
            }
        }
        Queries { by_wnid, source: "the paper's name_def queries (suites/laionet/name_def_queries.tsv)".into() }
    }

    /// A table with `wnid` and `query` columns.
    pub fn load(path: &Path) -> Result<Queries> {
        let mut by_wnid = BTreeMap::new();
        for (line, w, q) in read_map(path, "wnid", "query")? {
            if q.is_empty() {
                bail!("{}:{line}: the query of {w} is empty", path.display());
            }
            by_wnid.insert(w, q);
        }
        Ok(Queries { by_wnid, source: path.display().to_string() })
    }

    /// The query of every wnid in `wnids`, in that order; an error naming the classes that have
    /// lemmas but no query.
    pub fn for_classes(&self, wnids: &[String]) -> Result<Vec<String>> {
        let missing: Vec<&str> = wnids.iter().filter(|w| !self.by_wnid.contains_key(*w)).map(String::as_str).collect();
        if !missing.is_empty() {
            bail!(
                "the query table {} has no query for {} class(es) that have lemmas: {}",
                self.source,
                missing.len(),
                missing.join(", ")
            );
        }
        Ok(wnids.iter().map(|w| self.by_wnid[w].clone()).collect())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_shipped_defaults_are_the_papers_sizes() {
        let l = Lemmas::default_paper();
        assert_eq!(l.entries.len(), 1825);
        assert_eq!(l.wnids().len(), 995);
        assert!(l.entries.iter().any(|(l, w)| l == "kit fox" && w == "n02119789"));
        assert!(l.entries.iter().any(|(l, w)| l == "Siberian husky" && w == IMAGENET_HUSKY));
        assert!(!l.entries.iter().any(|(_, w)| w == PAPER_HUSKY));
        let q = Queries::default_paper();
        assert_eq!(q.by_wnid.len(), 1000);
        assert!(q.by_wnid["n01440764"].starts_with("tench which is freshwater dace-like"));
    }

    #[test]
    fn lemmas_of_two_classes_are_dropped_and_empty_classes_reported() {
        let lists = vec![
            ("n1".to_string(), vec!["dog".to_string(), "hound".into(), "dog".into()]),
            ("n2".to_string(), vec!["dog".to_string(), "hot dog".into()]),
            ("n3".to_string(), vec!["hound".to_string()]),
        ];
        let l = unique_lemmas(&lists, "t".into());
        assert_eq!(l.entries, vec![("hot dog".to_string(), "n2".to_string())]);
        assert_eq!(l.notes.len(), 2, "{:?}", l.notes);
        assert!(l.notes[0].starts_with("2 lemmas are listed for more than one class"), "{:?}", l.notes);
        assert!(l.notes[1].ends_with("can match no caption: n1, n3"), "{:?}", l.notes);
    }

    #[test]
    fn a_query_missing_for_a_class_with_lemmas_is_named() {
        let q = Queries { by_wnid: [("n1".to_string(), "a".to_string())].into(), source: "q.tsv".into() };
        let e = q.for_classes(&["n1".into(), "n2".into()]).unwrap_err().to_string();
        assert!(e.contains("q.tsv") && e.ends_with(": n2"), "{e}");
    }
}
