//! The paper's substring match of lemmas in captions (eval-on-laion's `utils/laion_utils.py` and
//! `scripts/createdataset/label_laion.py`), every lemma at once.
//!
//! The paper turns every character of Python's `string.punctuation` in a caption into a space,
//! pads the caption with one space each side, and says a lemma occurs when `" " + lemma + " "`
//! is a substring of that, case-sensitively. A lemma is matched *as written*: one holding
//! punctuation (`three-toed sloth`, `U-boat`) can never occur in a caption whose punctuation
//! became spaces, so such lemmas never match, in the paper and here ([`Matcher::never_matching`]
//! lists them). Punctuation is ASCII, so the rewrite works on UTF-8 bytes exactly as Python's
//! `str.translate` does on characters, and a byte substring is a character substring.
//!
//! All lemmas are found in one pass ([`aho_corasick`], overlapping matches: `" dog "` and
//! `" hot dog "` overlap in `" hot dog "`). A caption whose lemmas name two or more classes is
//! ambiguous and dropped by the builder; one naming exactly one class is a candidate.
//! `ignore_case` compares ASCII letters case-insensitively (an option, not the paper's).

use aho_corasick::{AhoCorasick, AhoCorasickKind, MatchKind};
use anyhow::{Context, Result};

use crate::data::lexicon::Lemmas;

/// Python's `string.punctuation`.
pub const PUNCTUATION: &[u8] = b"!\"#$%&'()*+,-./:;<=>?@[\\]^_`{|}~";

/// What a caption's lemmas say.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Outcome {
    /// No lemma occurs.
    None,
    /// Lemmas of exactly one class occur (the class's index in [`Matcher::wnids`]).
    One(u32),
    /// Lemmas of two or more classes occur.
    Multi,
}

/// Every lemma of a dictionary, ready to be found in captions.
pub struct Matcher {
    ac: AhoCorasick,
    /// Per pattern (lemma), its class index.
    class_of: Vec<u32>,
    /// The classes, sorted.
    pub wnids: Vec<String>,
    /// A byte -> byte map: punctuation to space, everything else kept.
    table: [u8; 256],
}

impl Matcher {
    pub fn new(lemmas: &Lemmas, ignore_case: bool) -> Result<Matcher> {
        let wnids = lemmas.wnids();
        let class_of =
            lemmas.entries.iter().map(|(_, w)| wnids.binary_search(w).expect("every wnid is listed") as u32).collect();
        let patterns: Vec<String> = lemmas.entries.iter().map(|(l, _)| format!(" {l} ")).collect();
        let ac = AhoCorasick::builder()
            .match_kind(MatchKind::Standard)
            .kind(Some(AhoCorasickKind::DFA))
            .ascii_case_insensitive(ignore_case)
            // Every pattern starts with a space, which nearly every caption holds: a prefilter for it
            // only costs time (measured: about a tenth of the match stage).
            .prefilter(false)
            .build(&patterns)
            .context("cannot build the lemma matcher")?;
        let mut table = [0u8; 256];
        for (i, t) in table.iter_mut().enumerate() {
            *t = if PUNCTUATION.contains(&(i as u8)) { b' ' } else { i as u8 };
        }
        Ok(Matcher { ac, class_of, wnids, table })
    }

    /// The lemmas that hold punctuation and so can never match (as in the paper).
    pub fn never_matching(lemmas: &Lemmas) -> Vec<&str> {
        lemmas
            .entries
            .iter()
            .filter(|(l, _)| l.bytes().any(|b| PUNCTUATION.contains(&b)))
            .map(|(l, _)| l.as_str())
            .collect()
    }

    /// The caption as the paper searches it: punctuation to spaces, one space each side, in `buf`.
    pub fn transform<'b>(&self, caption: &[u8], buf: &'b mut Vec<u8>) -> &'b [u8] {
        buf.clear();
        buf.reserve(caption.len() + 2);
        buf.push(b' ');
        buf.extend(caption.iter().map(|&b| self.table[b as usize]));
        buf.push(b' ');
        buf
    }

    /// The distinct classes whose lemmas occur in `caption` (indices into `wnids`, in the order
    /// first found), into `hits`.
    pub fn classes(&self, caption: &[u8], buf: &mut Vec<u8>, hits: &mut Vec<u32>) {
        hits.clear();
        let text = self.transform(caption, buf);
        for m in self.ac.find_overlapping_iter(text) {
            let c = self.class_of[m.pattern().as_usize()];
            if !hits.contains(&c) {
                hits.push(c);
            }
        }
    }

    /// What `caption`'s lemmas say.
    pub fn outcome(&self, caption: &[u8], buf: &mut Vec<u8>, hits: &mut Vec<u32>) -> Outcome {
        self.classes(caption, buf, hits);
        match hits.len() {
            0 => Outcome::None,
            1 => Outcome::One(hits[0]),
            _ => Outcome::Multi,
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn dict(pairs: &[(&str, &str)]) -> Lemmas {
        Lemmas {
            entries: pairs.iter().map(|(l, w)| (l.to_string(), w.to_string())).collect(),
            source: "test".into(),
            notes: vec![],
        }
    }

    fn outcome(m: &Matcher, caption: &str) -> Outcome {
        m.outcome(caption.as_bytes(), &mut Vec::new(), &mut Vec::new())
    }

    #[test]
    fn every_rule_by_hand() {
        let l = dict(&[("dog", "n2"), ("hot dog", "n1"), ("ai", "n3"), ("U-boat", "n4"), ("tabby", "n5")]);
        let m = Matcher::new(&l, false).unwrap();
        let one = |w: &str| Outcome::One(m.wnids.iter().position(|x| x == w).unwrap() as u32);
        // Padding: a lemma at either end of the caption matches; inside a word it does not.
        assert_eq!(outcome(&m, "dog"), one("n2"));
        assert_eq!(outcome(&m, "paid for it"), Outcome::None);
        // Punctuation becomes spaces, so a lemma next to punctuation matches.
        assert_eq!(outcome(&m, "my dog, asleep"), one("n2"));
        assert_eq!(outcome(&m, "(tabby)"), one("n5"));
        assert_eq!(outcome(&m, "tabby's bed"), one("n5")); // the apostrophe is punctuation
                                                           // Overlapping lemmas of two classes: " hot dog " holds " dog " too: two classes.
        assert_eq!(outcome(&m, "a hot dog stand"), Outcome::Multi);
        // Case-sensitive, as the paper.
        assert_eq!(outcome(&m, "Dog"), Outcome::None);
        // A lemma with punctuation never matches, even written exactly so.
        assert_eq!(outcome(&m, "U-boat"), Outcome::None);
        assert_eq!(outcome(&m, "U boat"), Outcome::None);
        assert_eq!(Matcher::never_matching(&l), vec!["U-boat"]);
        // Two lemmas of the same class, or one lemma twice, are one class.
        assert_eq!(outcome(&m, "dog dog"), one("n2"));
        // Non-ASCII text around a lemma; non-ASCII letters are not punctuation.
        assert_eq!(outcome(&m, "é dog ü"), one("n2"));
        assert_eq!(outcome(&m, "édog"), Outcome::None);
        // Tabs and newlines are not punctuation (string.punctuation has none), so they do not pad.
        assert_eq!(outcome(&m, "a\tdog"), Outcome::None);
        let ci = Matcher::new(&l, true).unwrap();
        assert_eq!(outcome(&ci, "DOG"), Outcome::One(ci.wnids.iter().position(|x| x == "n2").unwrap() as u32));
        assert_eq!(m.transform(b"a-b_c.", &mut Vec::new()), b" a b c  ");
    }
}
