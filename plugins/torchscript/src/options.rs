//! The backend options that set up libtorch (`options:` in the model YAML, see README.md):
//! `qengine`, `device` and `dtype`, each checked with the values it accepts named, and the
//! precision a module's parameters want.

use tch::{CModule, Cuda, Device, Kind, QEngine};

use crate::values::torch_message;

/// Sets libtorch's quantized engine (needed by quantized modules, such as torchvision's quantized
/// models, which are built for fbgemm on x86). `None`: fbgemm on x86-64, qnnpack elsewhere, and a
/// libtorch without it is not an error (only quantized modules need one).
pub(crate) fn set_quantized_engine(name: Option<&str>) -> Result<(), String> {
    let (engine, explicit) = match name {
        None => (if cfg!(target_arch = "x86_64") { QEngine::FBGEMM } else { QEngine::QNNPACK }, false),
        Some("fbgemm") => (QEngine::FBGEMM, true),
        Some("qnnpack") => (QEngine::QNNPACK, true),
        Some(other) => return Err(format!("options.qengine: {other:?} is not one of fbgemm, qnnpack")),
    };
    match engine.set() {
        Err(e) if explicit => Err(format!("options.qengine: libtorch cannot use {engine:?}: {}", torch_message(&e))),
        _ => Ok(()),
    }
}

/// `options.device`: `cpu`, `cuda`, `cuda:N` or `auto` (the default: CUDA when the plugin is built
/// with the `cuda` feature and libtorch sees a GPU, else the CPU).
pub(crate) fn select_device(name: Option<&str>) -> Result<Device, String> {
    let name = name.unwrap_or("auto");
    let cuda_index = match name {
        "cpu" => return Ok(Device::Cpu),
        "auto" if !cfg!(feature = "cuda") => return Ok(Device::Cpu),
        "auto" => {
            if Cuda::is_available() {
                return Ok(Device::Cuda(0));
            }
            eprintln!(
                "shiftbench-torchscript: warning: no CUDA device available to libtorch (no GPU, or a \
                 libtorch without CUDA); running on the CPU"
            );
            return Ok(Device::Cpu);
        }
        "cuda" => 0,
        other => match other.strip_prefix("cuda:").and_then(|i| i.parse::<usize>().ok()) {
            Some(i) => i,
            None => return Err(format!("options.device: {other:?} is not one of cpu, cuda, cuda:N, auto")),
        },
    };
    if !cfg!(feature = "cuda") {
        return Err(format!(
            "options.device: {name} needs the plugin built with `--features cuda` (this build runs on the CPU only)"
        ));
    }
    let count = Cuda::device_count();
    if (cuda_index as i64) >= count {
        return Err(format!("options.device: {name}, but libtorch sees {count} CUDA device(s)"));
    }
    Ok(Device::Cuda(cuda_index))
}

pub(crate) fn parse_kind(name: &str) -> Result<Kind, String> {
    match name {
        "f32" | "float32" => Ok(Kind::Float),
        "f16" | "float16" => Ok(Kind::Half),
        "bf16" | "bfloat16" => Ok(Kind::BFloat16),
        "f64" | "float64" => Ok(Kind::Double),
        other => Err(format!("options.dtype: {other:?} is not one of f32, f16, bf16, f64")),
    }
}

/// The kind of the module's first floating-point parameter: a module saved in half precision
/// wants half-precision inputs.
pub(crate) fn parameter_kind(module: &CModule) -> Option<Kind> {
    let params = module.named_parameters().ok()?;
    params.iter().find_map(|(_, t)| match t.f_kind().ok()? {
        k @ (Kind::Float | Kind::Half | Kind::BFloat16 | Kind::Double) => Some(k),
        _ => None,
    })
}
