//! The paper's pickled label dictionaries, read without Python: `wnid2laionindices(...).pkl`, a
//! dict from wnid (str) to the LAION row indices of that class (a list of int: eval-on-laion's
//! scripts build them with `list.append(index)` and save `np.array(...)[mask].tolist()`, so plain
//! Python ints). Pickle protocols 2-5 as `pickle.dump` writes them. A value that is not a list
//! (or tuple or set) of integers, such as a NumPy array (pickled as a call to NumPy's own
//! reconstruct function), is refused with a sentence saying how to convert it; a row index listed
//! under two wnids is refused too (a row has one label).

use std::collections::HashMap;
use std::path::Path;

use anyhow::{anyhow, bail, Context, Result};
use serde_pickle::{DeOptions, HashableValue, Value};

use crate::util::safeio;

/// Whether `path` names a pickle (by extension: `.pkl`, `.pickle`).
pub fn is_pickle(path: &Path) -> bool {
    path.extension()
        .and_then(|e| e.to_str())
        .is_some_and(|e| matches!(e.to_ascii_lowercase().as_str(), "pkl" | "pickle"))
}

fn int_of(v: &HashableValue) -> Option<String> {
    match v {
        HashableValue::I64(i) => Some(i.to_string()),
        HashableValue::Int(i) => Some(i.to_string()),
        _ => None,
    }
}

/// Reads a pickled `wnid -> [row index]` dict as `row index (as text) -> wnid`.
pub fn read_index_labels(path: &Path) -> Result<HashMap<String, String>> {
    let bytes = safeio::read_bounded(path, safeio::MAX_TABLE_BYTES)
        .with_context(|| format!("cannot read the labels pickle {}", path.display()))?;
    let value = serde_pickle::value_from_slice(&bytes, DeOptions::new().replace_unresolved_globals())
        .map_err(|e| anyhow!("{} is not a readable pickle: {e}", path.display()))?;
    let Value::Dict(dict) = value else {
        bail!("{}: expected a pickled dict of wnid -> list of row indices", path.display());
    };
    let mut out: HashMap<String, String> = HashMap::new();
    for (k, v) in dict {
        let HashableValue::String(wnid) = k else {
            bail!("{}: a key of the dict is not a wnid string ({k:?})", path.display());
        };
        let items: Vec<Option<String>> = match v {
            Value::List(l) | Value::Tuple(l) => l
                .iter()
                .map(|x| match x {
                    Value::I64(i) => Some(i.to_string()),
                    Value::Int(i) => Some(i.to_string()),
                    _ => None,
                })
                .collect(),
            Value::Set(s) | Value::FrozenSet(s) => s.iter().map(int_of).collect(),
            other => bail!(
                "{}: the rows of {wnid} are not a list of integers ({}); if they are NumPy arrays, {CONVERT}",
                path.display(),
                kind(&other)
            ),
        };
        for item in items {
            let Some(i) = item else {
                bail!(
                    "{}: the rows of {wnid} are not a list of integers; if they are NumPy arrays, {CONVERT}",
                    path.display()
                );
            };
            if let Some(prev) = out.insert(i.clone(), wnid.clone()) {
                if prev != wnid {
                    bail!("{}: row {i} is listed under both {prev} and {wnid}", path.display());
                }
            }
        }
    }
    Ok(out)
}

/// How to turn NumPy arrays into lists the reader takes.
const CONVERT: &str = "convert them first: pickle.dump({w: [int(i) for i in ix] for w, ix in d.items()}, f)";

fn kind(v: &Value) -> &'static str {
    match v {
        Value::None => "None (an object pickle could not describe, such as a NumPy array)",
        Value::Dict(_) => "a dict",
        Value::String(_) => "a string",
        Value::Bytes(_) => "bytes",
        _ => "a number or other scalar",
    }
}
