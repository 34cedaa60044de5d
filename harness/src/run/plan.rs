//! A run plan: the models, suites and settings of a run in one YAML file a nightly job can keep.
//!
//! ```yaml
//! # nightly.yaml: `shiftbench run --plan nightly.yaml`
//! models:                      # model YAMLs, plugin libraries or plugin names
//!   - models/squeezenet1.1-fp16.yaml
//!   - models/mobilenetv2-12-int8.yaml
//! suites:                      # the first is the reference the others are compared with
//!   - suites/imagenet-val.yaml
//!   - suites/laionet.yaml
//! out: results/nightly         # logs and result.json (default shiftbench-out)
//! batch: 32                    # optional, as the command-line flags
//! threads: 8
//! model_threads: 0
//! replicas: 2                 # copies of each model side by side (default: see --replicas)
//! argmax: auto                 # auto | suite | all
//! sort: drop                   # a column of the summary table
//! strict: false
//! fresh: false
//! ```
//!
//! Paths are relative to the plan file; `${VAR}` and `${VAR:-default}` expand from the
//! environment. A model given by bare name (`example`, `onnx`) is looked up as a plugin.
//! Command-line flags override the plan's settings; `--model`/`--suite` add to its lists.

use std::path::{Path, PathBuf};

use anyhow::{anyhow, Context, Result};
use serde::Deserialize;
use shiftbench_model_config::yaml_error;

use crate::data::env::expand_env;
use crate::run::options::Argmax;

#[derive(Debug, Clone, Default, Deserialize, PartialEq)]
#[serde(deny_unknown_fields)]
pub struct PlanYaml {
    #[serde(default)]
    pub models: Vec<String>,
    #[serde(default)]
    pub suites: Vec<String>,
    #[serde(default)]
    pub out: Option<String>,
    #[serde(default)]
    pub batch: Option<usize>,
    #[serde(default)]
    pub threads: Option<usize>,
    #[serde(default)]
    pub model_threads: Option<u32>,
    #[serde(default)]
    pub replicas: Option<u32>,
    #[serde(default)]
    pub argmax: Option<Argmax>,
    #[serde(default)]
    pub sort: Option<String>,
    #[serde(default)]
    pub strict: Option<bool>,
    #[serde(default)]
    pub fresh: Option<bool>,
}

/// A plan with its paths resolved.
#[derive(Debug, Clone, Default, PartialEq)]
pub struct Plan {
    pub models: Vec<String>,
    pub suites: Vec<PathBuf>,
    pub out: Option<PathBuf>,
    pub batch: Option<usize>,
    pub threads: Option<usize>,
    pub model_threads: Option<u32>,
    pub replicas: Option<u32>,
    pub argmax: Option<Argmax>,
    pub sort: Option<String>,
    pub strict: Option<bool>,
    pub fresh: Option<bool>,
}

/// Whether a `--model` value names a file (rather than a plugin by name).
fn looks_like_path(m: &str) -> bool {
    m.contains('/') || [".yaml", ".yml", std::env::consts::DLL_SUFFIX].iter().any(|e| m.ends_with(e))
}

impl Plan {
    pub fn load(path: &Path) -> Result<Plan> {
        let text = crate::util::safeio::read_text_bounded(path, crate::util::safeio::MAX_YAML_BYTES)
            .with_context(|| format!("cannot read plan {}", path.display()))?;
        let y: PlanYaml = serde_yaml::from_str(&text).map_err(|e| anyhow!(yaml_error(path, &e)))?;
        let base = path.parent().unwrap_or(Path::new("."));
        let here = |k: &str| format!("{}: {k}", path.display());
        let models = y
            .models
            .iter()
            .map(|m| {
                let m = expand_env(m).with_context(|| here("models"))?;
                Ok(if looks_like_path(&m) { base.join(&m).to_string_lossy().into_owned() } else { m })
            })
            .collect::<Result<Vec<_>>>()?;
        let suites = y
            .suites
            .iter()
            .map(|s| Ok(base.join(expand_env(s).with_context(|| here("suites"))?)))
            .collect::<Result<Vec<_>>>()?;
        let out = y
            .out
            .as_deref()
            .map(|o| Ok::<_, anyhow::Error>(base.join(expand_env(o).with_context(|| here("out"))?)))
            .transpose()?;
        Ok(Plan {
            models,
            suites,
            out,
            batch: y.batch,
            threads: y.threads,
            model_threads: y.model_threads,
            replicas: y.replicas,
            argmax: y.argmax,
            sort: y.sort,
            strict: y.strict,
            fresh: y.fresh,
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn paths_are_relative_to_the_plan() {
        let d = tempfile::tempdir().unwrap();
        let p = d.path().join("nightly.yaml");
        std::fs::write(&p, "models: [m/a.yaml, example]\nsuites: [s.yaml]\nout: res\nbatch: 8\nargmax: suite\n")
            .unwrap();
        let plan = Plan::load(&p).unwrap();
        assert_eq!(plan.models, vec![d.path().join("m/a.yaml").to_string_lossy().into_owned(), "example".to_string()]);
        assert_eq!(plan.suites, vec![d.path().join("s.yaml")]);
        assert_eq!(plan.out, Some(d.path().join("res")));
        assert_eq!((plan.batch, plan.argmax), (Some(8), Some(Argmax::Suite)));
        std::fs::write(&p, "models: [a]\nbtach: 3\n").unwrap();
        let e = Plan::load(&p).unwrap_err().to_string();
        assert!(e.contains("nightly.yaml:2:"), "{e}");
    }
}
