//! The keys of a model YAML that only `plugin: python` reads: which Python code builds the model
//! and how it is called.
//!
//! ```yaml
//! plugin: python
//! python: my_resnet.py        # a Python file, relative to this YAML ...
//! # module: mypkg.models      # ... or a module importable from this YAML's folder or python_env
//! factory: load               # the function called once to build the model (default: load)
//! args:                       # keyword arguments of the factory; a string naming a file or
//!   weights: r50.pth          # folder beside this YAML is passed as its absolute path
//!   width: 50
//! python_env: ../.venv        # a virtual environment of the plugin's Python (else $VIRTUAL_ENV)
//! device: cpu                 # cpu (default), cuda or cuda:N: where a torch.nn.Module runs
//! embedding: avgpool          # optional: a submodule whose output is the embedding
//! ```
//!
//! The rest of the YAML (labels, scores, preprocess, batch, ...) is the usual card.

use std::collections::BTreeMap;
use std::path::{Path, PathBuf};

use crate::{err, ConfigError};

/// The keys of this section, as a model YAML spells them.
pub const PYTHON_KEYS: [&str; 6] = ["python", "module", "factory", "args", "python_env", "device"];

/// Where the model's code is.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum PythonSource {
    /// A Python file (absolute, resolved against the YAML's folder).
    File(PathBuf),
    /// A module name (`mypkg.models`), imported with the YAML's folder first on `sys.path`.
    Module(String),
}

/// The Python section of a model YAML, checked and resolved against the YAML's folder.
#[derive(Debug, Clone, PartialEq)]
pub struct PythonConfig {
    pub source: PythonSource,
    /// The function of the file or module that builds the model.
    pub factory: String,
    /// The factory's keyword arguments, as written.
    pub args: BTreeMap<String, serde_yaml::Value>,
    /// `python_env:` resolved against the YAML's folder (None: `$VIRTUAL_ENV`, if set, is used).
    pub python_env: Option<PathBuf>,
    /// `cpu`, `cuda` or `cuda:N`.
    pub device: String,
    /// The YAML's folder (what relative paths in `args` are read against).
    pub base: PathBuf,
}

/// The Python keys of a model YAML as written (the fields of `ModelYaml` they come from).
pub(crate) struct PythonYaml<'a> {
    pub python: Option<&'a str>,
    pub module: Option<&'a str>,
    pub factory: Option<&'a str>,
    pub args: Option<&'a serde_yaml::Value>,
    pub python_env: Option<&'a str>,
    pub device: Option<&'a str>,
}

impl PythonYaml<'_> {
    /// The keys that are set, in [`PYTHON_KEYS`] order.
    fn given(&self) -> Vec<&'static str> {
        let set = [
            self.python.is_some(),
            self.module.is_some(),
            self.factory.is_some(),
            self.args.is_some(),
            self.python_env.is_some(),
            self.device.is_some(),
        ];
        PYTHON_KEYS.iter().zip(set).filter(|(_, s)| *s).map(|(k, _)| *k).collect()
    }

    /// Checks the section: for `plugin: python` the resolved section, for any other plugin none
    /// (its keys are then an error). `at(key)` names the YAML and the key's line.
    pub(crate) fn resolve(
        &self,
        plugin: &str,
        model: Option<&str>,
        base: &Path,
        at: &dyn Fn(&str) -> String,
    ) -> Result<Option<PythonConfig>, ConfigError> {
        if plugin != "python" {
            return match self.given().first() {
                Some(k) => Err(err(format!(
                    "{}: `{k}:` is read by `plugin: python` only (this YAML says `plugin: {plugin}`)",
                    at(k)
                ))),
                None => Ok(None),
            };
        }
        if model.is_some() {
            return Err(err(format!(
                "{}: `model:` does not apply to `plugin: python`: name the code with `python: <file>.py` (or `module:`) and pass a weights file in `args:`",
                at("model")
            )));
        }
        let source = match (self.python, self.module) {
            (Some(_), Some(_)) => {
                return Err(err(format!(
                    "{}: give `python:` (a file) or `module:` (a module name), not both",
                    at("module")
                )))
            }
            (None, None) => {
                return Err(err(format!(
                "{}: `plugin: python` needs `python: <file>.py` (relative to this YAML) or `module: <package.module>`",
                at("plugin")
            )))
            }
            (Some(f), None) if f.trim().is_empty() => return Err(err(format!("{}: `python:` is empty", at("python")))),
            (Some(f), None) => PythonSource::File(base.join(f)),
            (None, Some(m)) => {
                if m.is_empty() || !m.split('.').all(is_identifier) {
                    return Err(err(format!(
                        "{}: `module: {m}` is not a module name (dotted Python identifiers, such as mypkg.models)",
                        at("module")
                    )));
                }
                PythonSource::Module(m.to_string())
            }
        };
        let factory = self.factory.unwrap_or("load");
        if !is_identifier(factory) {
            return Err(err(format!("{}: `factory: {factory}` is not a Python function name", at("factory"))));
        }
        let args = match self.args {
            None | Some(serde_yaml::Value::Null) => BTreeMap::new(),
            Some(serde_yaml::Value::Mapping(m)) => {
                let mut out = BTreeMap::new();
                for (k, v) in m {
                    let Some(k) = k.as_str().filter(|k| is_identifier(k)) else {
                        return Err(err(format!(
                            "{}: `args:` key {k:?} is not a Python keyword argument name",
                            at("args")
                        )));
                    };
                    out.insert(k.to_string(), v.clone());
                }
                out
            }
            Some(_) => {
                return Err(err(format!(
                    "{}: `args:` is a mapping of keyword arguments (`args: {{weights: r50.pth}}`)",
                    at("args")
                )))
            }
        };
        let device = self.device.unwrap_or("cpu").trim().to_string();
        let valid_device = device == "cpu"
            || device == "cuda"
            || device.strip_prefix("cuda:").is_some_and(|n| !n.is_empty() && n.bytes().all(|b| b.is_ascii_digit()));
        if !valid_device {
            return Err(err(format!("{}: `device: {device}`; expected cpu, cuda or cuda:N", at("device"))));
        }
        let python_env = match self.python_env {
            Some(e) if e.trim().is_empty() => return Err(err(format!("{}: `python_env:` is empty", at("python_env")))),
            Some(e) => Some(base.join(e)),
            None => None,
        };
        Ok(Some(PythonConfig {
            source,
            factory: factory.to_string(),
            args,
            python_env,
            device,
            base: base.to_path_buf(),
        }))
    }
}

/// Whether `s` is a Python identifier (ASCII letters, digits, `_`; not starting with a digit).
fn is_identifier(s: &str) -> bool {
    let mut b = s.bytes();
    matches!(b.next(), Some(c) if c.is_ascii_alphabetic() || c == b'_')
        && b.all(|c| c.is_ascii_alphanumeric() || c == b'_')
}

/// The 1-based line of the first line of `text` that starts with `key:` (a top-level key).
pub(crate) fn key_line(text: &str, key: &str) -> Option<usize> {
    text.lines().position(|l| l.strip_prefix(key).is_some_and(|r| r.trim_start().starts_with(':'))).map(|i| i + 1)
}

impl PythonConfig {
    /// The virtual environment whose packages the model uses: `python_env:`, else `$VIRTUAL_ENV`
    /// (when set and not empty), else none (the plugin's own Python and its packages).
    pub fn env_dir(&self) -> Option<PathBuf> {
        self.python_env.clone().or_else(|| std::env::var_os("VIRTUAL_ENV").filter(|v| !v.is_empty()).map(PathBuf::from))
    }

    /// The file the model's code is in: `python:`, or the file of `module:` when it is found
    /// beside the YAML or in the environment's `site-packages` (None otherwise).
    pub fn code_file(&self) -> Option<PathBuf> {
        match &self.source {
            PythonSource::File(f) => Some(f.clone()),
            PythonSource::Module(m) => {
                let rel = m.replace('.', "/");
                let mut roots = vec![self.base.clone()];
                if let Some(env) = self.env_dir() {
                    roots.extend(site_packages(&env));
                }
                roots
                    .iter()
                    .flat_map(|r| [r.join(format!("{rel}.py")), r.join(&rel).join("__init__.py")])
                    .find(|p| p.is_file())
            }
        }
    }

    /// The factory's keyword arguments with every string that names an existing file or folder
    /// (relative to the YAML, or absolute) replaced by its absolute path, at any depth.
    pub fn resolved_args(&self) -> BTreeMap<String, serde_yaml::Value> {
        self.args.iter().map(|(k, v)| (k.clone(), self.resolve_value(v))).collect()
    }

    fn resolve_value(&self, v: &serde_yaml::Value) -> serde_yaml::Value {
        use serde_yaml::Value;
        match v {
            Value::String(s) => match self.existing(s) {
                Some(p) => Value::String(p.to_string_lossy().into_owned()),
                None => v.clone(),
            },
            Value::Sequence(items) => Value::Sequence(items.iter().map(|i| self.resolve_value(i)).collect()),
            Value::Mapping(m) => Value::Mapping(m.iter().map(|(k, v)| (k.clone(), self.resolve_value(v))).collect()),
            _ => v.clone(),
        }
    }

    /// `s` as a path that exists, relative to the YAML's folder (or absolute).
    fn existing(&self, s: &str) -> Option<PathBuf> {
        if s.is_empty() || s.contains('\n') {
            return None;
        }
        let p = self.base.join(s);
        p.exists().then(|| std::path::absolute(&p).unwrap_or(p))
    }

    /// Every path the factory's arguments name that exists: (where in `args`, such as `weights`
    /// or `files[1]`, the absolute path), in `args` order.
    pub fn arg_paths(&self) -> Vec<(String, PathBuf)> {
        let mut out = Vec::new();
        for (k, v) in &self.args {
            self.collect_paths(k, v, &mut out);
        }
        out
    }

    fn collect_paths(&self, at: &str, v: &serde_yaml::Value, out: &mut Vec<(String, PathBuf)>) {
        use serde_yaml::Value;
        match v {
            Value::String(s) => {
                if let Some(p) = self.existing(s) {
                    out.push((at.to_string(), p));
                }
            }
            Value::Sequence(items) => {
                for (i, item) in items.iter().enumerate() {
                    self.collect_paths(&format!("{at}[{i}]"), item, out);
                }
            }
            Value::Mapping(m) => {
                for (k, item) in m {
                    let k = k.as_str().map(str::to_string).unwrap_or_else(|| format!("{k:?}"));
                    self.collect_paths(&format!("{at}.{k}"), item, out);
                }
            }
            _ => {}
        }
    }
}

/// The `site-packages` folders of a virtual environment (`lib/python3.X/site-packages`, and
/// `Lib/site-packages` on Windows), those that exist.
pub fn site_packages(env: &Path) -> Vec<PathBuf> {
    let mut out = Vec::new();
    if let Ok(entries) = std::fs::read_dir(env.join("lib")) {
        let mut dirs: Vec<PathBuf> = entries
            .flatten()
            .filter(|e| e.file_name().to_string_lossy().starts_with("python"))
            .map(|e| e.path().join("site-packages"))
            .filter(|p| p.is_dir())
            .collect();
        dirs.sort();
        out.extend(dirs);
    }
    let win = env.join("Lib").join("site-packages");
    if win.is_dir() {
        out.push(win);
    }
    out
}

#[cfg(test)]
mod tests {
    use crate::ModelConfig;
    use std::path::Path;

    use super::PythonSource;

    #[test]
    fn python_section() {
        let d = tempfile::tempdir().unwrap();
        std::fs::write(d.path().join("w.bin"), b"w").unwrap();
        let yaml = d.path().join("m.yaml");
        let c = ModelConfig::parse(
            "plugin: python\npython: m.py\nargs:\n  weights: w.bin\n  other: [x, w.bin]\n  n: 3\n",
            &yaml,
        )
        .unwrap();
        let p = c.python.as_ref().unwrap();
        assert_eq!(p.source, PythonSource::File(d.path().join("m.py")));
        assert_eq!(p.factory, "load");
        assert_eq!(p.device, "cpu");
        assert_eq!(c.model_file.as_deref(), Some(d.path().join("m.py").as_path()));
        assert_eq!(c.name, "m");
        let paths: Vec<String> = p.arg_paths().into_iter().map(|(k, _)| k).collect();
        assert_eq!(paths, ["other[1]", "weights"]);
        let args = p.resolved_args();
        assert_eq!(args["weights"].as_str().unwrap(), d.path().join("w.bin").to_str().unwrap());
        assert_eq!(args["n"].as_u64(), Some(3));

        let bad = |y: &str| ModelConfig::parse(y, Path::new("d/m.yaml")).unwrap_err().0;
        assert_eq!(
            bad("plugin: onnx\nmodel: a.onnx\ndevice: cuda\n"),
            "d/m.yaml:3: `device:` is read by `plugin: python` only (this YAML says `plugin: onnx`)"
        );
        assert!(bad("plugin: python\n").starts_with("d/m.yaml:1: `plugin: python` needs `python: <file>.py`"));
        assert!(bad("plugin: python\npython: a.py\nmodule: a\n").contains("not both"));
        assert!(bad("plugin: python\nmodule: 1a.b\n").contains("is not a module name"));
        assert!(bad("plugin: python\npython: a.py\nfactory: a-b\n").starts_with("d/m.yaml:3: `factory: a-b`"));
        assert!(bad("plugin: python\npython: a.py\ndevice: gpu\n").contains("expected cpu, cuda or cuda:N"));
        assert!(bad("plugin: python\npython: a.py\nargs: [1]\n").contains("mapping of keyword arguments"));
        assert!(bad("plugin: python\npython: a.py\nargs: {1: 2}\n").contains("not a Python keyword argument name"));
        assert!(bad("plugin: python\npython: a.py\nmodel: w.pt\n").contains("pass a weights file in `args:`"));
        let c = ModelConfig::parse("plugin: python\nmodule: pkg.mod\ndevice: cuda:1\n", Path::new("d/m.yaml")).unwrap();
        assert_eq!(c.python.unwrap().source, PythonSource::Module("pkg.mod".into()));
    }
}
