//! What a module returns, made plain: an output tensor as contiguous f32 on the CPU, the shape
//! of an `IValue` in words for messages, and libtorch's errors without their C++ backtraces.

use tch::{Device, IValue, Kind, TchError, Tensor};

/// Moves an output tensor to the CPU as contiguous f32 (dequantizing a quantized one).
pub(crate) fn to_cpu_f32(t: Tensor) -> Result<Tensor, TchError> {
    let t = if t.device() != Device::Cpu { t.f_to_device(Device::Cpu)? } else { t };
    let t = match t.f_kind()? {
        Kind::QInt8 | Kind::QUInt8 | Kind::QInt32 => t.f_dequantize()?,
        _ => t,
    };
    let t = if t.f_kind()? != Kind::Float { t.f_to_kind(Kind::Float)? } else { t };
    t.f_contiguous()
}

pub(crate) fn fmt_per_image(numel: usize, batch: usize) -> String {
    if (numel / batch) * batch == numel {
        (numel / batch).to_string()
    } else {
        format!("{numel}/{batch}")
    }
}

pub(crate) fn ivalue_kind(v: &IValue) -> String {
    match v {
        IValue::Tuple(items) => format!("tuple of {}", items.len()),
        IValue::GenericList(items) => format!("list of {}", items.len()),
        IValue::TensorList(items) => format!("list of {} tensors", items.len()),
        IValue::GenericDict(items) => {
            format!("dict (keys: {})", items.iter().map(|(k, _)| ivalue_key(k)).collect::<Vec<_>>().join(", "))
        }
        IValue::Tensor(_) => "tensor".into(),
        IValue::None => "None".into(),
        _ => "non-tensor value".into(),
    }
}

pub(crate) fn ivalue_key(k: &IValue) -> String {
    match k {
        IValue::String(s) => s.clone(),
        IValue::Int(i) => i.to_string(),
        other => format!("{other:?}"),
    }
}

/// A libtorch error without the C++ backtrace libtorch appends to it; for an error raised inside
/// the TorchScript interpreter, only its last line (`RuntimeError: ...`), not the Python
/// tracebacks of where the module was written.
pub fn torch_message(e: &TchError) -> String {
    let text = match e {
        TchError::Torch(m) => m.clone(),
        other => other.to_string(),
    };
    let mut kept: Vec<&str> = Vec::new();
    for line in text.lines() {
        let t = line.trim_end();
        if t.starts_with("Exception raised from") || t.starts_with("frame #") {
            break;
        }
        if !t.trim().is_empty() {
            kept.push(t);
        }
    }
    if text.contains("Traceback of TorchScript") {
        if let Some(i) = kept.iter().rposition(|l| is_python_error_line(l)) {
            return format!("in the TorchScript interpreter: {}", kept[i..].join("\n"));
        }
    }
    if kept.is_empty() {
        text.trim().to_string()
    } else {
        kept.join("\n")
    }
}

/// `RuntimeError: ...`, `torch.jit.Error: ...`: a Python exception name, then a colon.
fn is_python_error_line(line: &str) -> bool {
    match line.split_once(": ") {
        Some((name, _)) => {
            !name.is_empty()
                && (name.ends_with("Error") || name.ends_with("Exception"))
                && name.chars().all(|c| c.is_ascii_alphanumeric() || c == '_' || c == '.')
        }
        None => false,
    }
}
