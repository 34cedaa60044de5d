//! From scores to a record's predictions: the labels a model's predictions are taken over on a
//! suite ([`allowed_labels`]), the top-k with deterministic ties ([`top_k_among`]), and the log
//! header that says which labels those were.

use shiftbench_model_config::imagenet1k_set;

use crate::data::suite::Suite;
use crate::host::scorer::Scorer;
use crate::results::predlog::LogHeader;
use crate::run::options::{Argmax, EvalOptions};
use crate::util::digest::lines_digest;

/// How many predictions each record keeps.
pub const TOP_K: usize = 5;

/// The label indices a model's predictions are taken over on `suite` (ascending), or `None` for
/// all of them. See [`Argmax`].
pub fn allowed_labels(labels: &[String], suite: &Suite, argmax: Argmax) -> Option<Vec<usize>> {
    let restrict = match argmax {
        Argmax::All => false,
        Argmax::Suite => true,
        Argmax::Auto => !labels.iter().all(|l| imagenet1k_set().contains(l.as_str())),
    };
    if !restrict {
        return None;
    }
    let universe = suite.universe();
    let allowed: Vec<usize> = (0..labels.len()).filter(|&i| universe.contains(&labels[i])).collect();
    (allowed.len() < labels.len()).then_some(allowed)
}

/// The log header of `model` on `suite`. The labels digest covers the labels predictions are
/// taken over, so a log made with another restriction is not resumed.
pub fn log_header_for(model: &dyn Scorer, suite: &Suite, allowed: Option<&[usize]>) -> LogHeader {
    let labels: Vec<String> = match allowed {
        None => model.labels().to_vec(),
        Some(a) => a.iter().map(|&i| model.labels()[i].clone()).collect(),
    };
    LogHeader::new(&model.card().name, &suite.name, &suite.digest, &lines_digest(labels.iter().map(String::as_str)))
}

/// The log header of `model` on `suite` under `opts`.
pub fn log_header_opts(model: &dyn Scorer, suite: &Suite, opts: &EvalOptions) -> LogHeader {
    let allowed = allowed_labels(model.labels(), suite, opts.argmax);
    log_header_for(model, suite, allowed.as_deref())
}

/// The log header of `model` on `suite` with predictions over all its labels.
pub fn log_header(model: &dyn Scorer, suite: &Suite) -> LogHeader {
    log_header_for(model, suite, None)
}

/// Indices of the `k` highest scores, best first; equal scores keep the lower index first (a
/// stable descending sort), so quantized models with tied scores rank deterministically.
pub fn top_k(scores: &[f32], k: usize) -> Vec<usize> {
    top_k_among(scores, None, k)
}

/// [`top_k`] over the indices in `allowed` (ascending) only, or over all when `None`.
pub fn top_k_among(scores: &[f32], allowed: Option<&[usize]>, k: usize) -> Vec<usize> {
    let mut top: Vec<usize> = Vec::with_capacity(k + 1);
    let mut consider = |i: usize| {
        let s = scores[i];
        if top.len() == k && s <= scores[top[k - 1]] {
            return;
        }
        let pos = top.iter().position(|&t| s > scores[t]).unwrap_or(top.len());
        top.insert(pos, i);
        top.truncate(k);
    };
    if k == 0 {
        return top;
    }
    match allowed {
        None => (0..scores.len()).for_each(&mut consider),
        Some(a) => a.iter().copied().for_each(&mut consider),
    }
    top
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn top_k_breaks_ties_by_lower_index() {
        assert_eq!(top_k(&[0.1, 0.9, 0.5, 0.9, 0.2], 3), vec![1, 3, 2]);
        assert_eq!(top_k(&[1.0; 7], 5), vec![0, 1, 2, 3, 4]);
        assert_eq!(top_k(&[3.0, 1.0], 5), vec![0, 1]);
        assert_eq!(top_k(&[-1.0, -0.5, -2.0], 1), vec![1]);
        // Same as a stable descending sort on random data.
        let v: Vec<f32> = (0..1000u32).map(|i| ((i.wrapping_mul(2654435761) >> 7) % 97) as f32).collect();
        let mut idx: Vec<usize> = (0..v.len()).collect();
        idx.sort_by(|&a, &b| v[b].partial_cmp(&v[a]).unwrap());
        assert_eq!(top_k(&v, 5), idx[..5].to_vec());
    }

    #[test]
    fn top_k_among_a_subset() {
        let s = [0.9, 0.1, 0.8, 0.8, 0.3];
        assert_eq!(top_k_among(&s, Some(&[1, 2, 3, 4]), 2), vec![2, 3]);
        assert_eq!(top_k_among(&s, Some(&[1, 4]), 5), vec![4, 1]);
        assert_eq!(top_k_among(&s, Some(&[]), 5), Vec::<usize>::new());
        assert_eq!(top_k_among(&s, None, 1), vec![0]);
    }
}
