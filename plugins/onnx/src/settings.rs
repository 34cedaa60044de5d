//! The plugin's backend options (`options:` in the model YAML, see the crate docs): threads,
//! graph optimization, device, spinning and the ONNX Runtime library, each checked with the
//! value it accepts named.

use ort::session::builder::GraphOptimizationLevel;
use shiftbench_model_config::ModelConfig;

/// Options this plugin understands under `options:`.
pub const KNOWN_OPTIONS: &[&str] = &["threads", "optimization", "device", "spinning", "ort_library"];

/// Where inference runs.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Device {
    Cpu,
    Cuda(i32),
}

impl std::fmt::Display for Device {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            Device::Cpu => f.write_str("cpu"),
            Device::Cuda(id) => write!(f, "cuda:{id}"),
        }
    }
}

/// The settings taken from `options:` and the load request.
#[derive(Debug, Clone, PartialEq)]
pub struct Settings {
    /// Intra-op threads; 0 = ONNX Runtime's default.
    pub threads: usize,
    pub optimization: GraphOptimizationLevel,
    pub device: Device,
    pub spinning: Option<bool>,
    pub ort_library: Option<String>,
}

fn parse_optimization(s: &str) -> Option<GraphOptimizationLevel> {
    Some(match s {
        "disable" => GraphOptimizationLevel::Disable,
        "basic" => GraphOptimizationLevel::Level1,
        "extended" => GraphOptimizationLevel::Level2,
        "layout" => GraphOptimizationLevel::Level3,
        "all" => GraphOptimizationLevel::All,
        _ => return None,
    })
}

fn parse_device(s: &str) -> Option<Device> {
    match s {
        "cpu" => Some(Device::Cpu),
        "cuda" | "gpu" => Some(Device::Cuda(0)),
        _ => s.strip_prefix("cuda:").and_then(|id| id.parse::<i32>().ok()).filter(|id| *id >= 0).map(Device::Cuda),
    }
}

impl Settings {
    /// Reads `options:`; `request_threads` (from the harness) overrides `options.threads` when
    /// non-zero.
    pub fn from_config(cfg: &ModelConfig, request_threads: u32) -> Result<Settings, String> {
        let yaml = cfg.path.display();
        for key in cfg.options.keys() {
            if !KNOWN_OPTIONS.contains(&key.as_str()) {
                return Err(format!(
                    "{yaml}: options.{key} is not an ONNX plugin option; known options: {}",
                    KNOWN_OPTIONS.join(", ")
                ));
            }
        }
        let e = |e: shiftbench_model_config::ConfigError| e.to_string();
        let yaml_threads = cfg.option_u64("threads").map_err(e)?.unwrap_or(0) as usize;
        let threads = if request_threads > 0 { request_threads as usize } else { yaml_threads };
        let optimization = match cfg.option_str("optimization").map_err(e)? {
            None => GraphOptimizationLevel::All,
            Some(s) => parse_optimization(s).ok_or_else(|| {
                format!("{yaml}: options.optimization is {s:?}; expected one of disable, basic, extended, layout, all")
            })?,
        };
        let device = match cfg.option_str("device").map_err(e)? {
            None if cfg!(feature = "cuda") => Device::Cuda(0),
            None => Device::Cpu,
            Some(s) => parse_device(s)
                .ok_or_else(|| format!("{yaml}: options.device is {s:?}; expected cpu, cuda or cuda:<id>"))?,
        };
        if matches!(device, Device::Cuda(_)) && !cfg!(feature = "cuda") {
            return Err(format!(
                "{yaml}: options.device is {device} but this ONNX plugin was built without CUDA support; rebuild it with `cargo build -p shiftbench-onnx-plugin --features cuda`, or set device: cpu"
            ));
        }
        let spinning = match cfg.options.get("spinning") {
            None => None,
            Some(v) => Some(v.as_bool().ok_or_else(|| format!("{yaml}: options.spinning must be true or false"))?),
        };
        let ort_library = cfg.option_str("ort_library").map_err(e)?.map(str::to_string);
        Ok(Settings { threads, optimization, device, spinning, ort_library })
    }
}
