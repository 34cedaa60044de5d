//! The tensors of a session: its inputs and outputs described as [`TensorInfo`], an output read
//! back as f32 values whatever its floating-point type, and the embedding output (the tensor
//! `embedding:` names, made a graph output by [`crate::embedding`]) checked for one row of values
//! per image.

use ort::session::{HasSelectedOutputs, OutputSelector, RunOptions, Session};
use ort::value::{TensorElementType, ValueType};

use crate::embedding;
use crate::plan::{self, Elem, Plan, TensorInfo};

fn elem_of(ty: TensorElementType) -> Elem {
    match ty {
        TensorElementType::Float32 => Elem::F32,
        TensorElementType::Float16 => Elem::F16,
        other => Elem::Other(other.to_string()),
    }
}

pub(crate) fn tensor_info(name: &str, ty: &ValueType) -> TensorInfo {
    match ty {
        ValueType::Tensor { ty, shape, .. } => {
            TensorInfo { name: name.to_string(), elem: elem_of(*ty), dims: shape.to_vec() }
        }
        other => {
            TensorInfo { name: name.to_string(), elem: Elem::Other(format!("non-tensor {other:?}")), dims: Vec::new() }
        }
    }
}

/// The embedding (`embedding:` in the YAML) as the session has it.
pub(crate) struct EmbeddingOutput {
    /// The tensor named, and how the model was changed to expose it.
    pub(crate) exposure: embedding::Exposure,
    /// The element type and shape of the graph output read (after any dequantization).
    pub(crate) elem: TensorElementType,
    pub(crate) dims: Vec<i64>,
    /// Values per image.
    pub(crate) len: usize,
    /// Run options that ask the session for the scores only, and for the embedding only.
    pub(crate) scores_only: RunOptions<HasSelectedOutputs>,
    pub(crate) embedding_only: RunOptions<HasSelectedOutputs>,
}

/// The tensor `out` (of element type `elem`) as its shape and f32 values.
pub(crate) fn extract(out: &ort::value::DynValue, elem: TensorElementType) -> Result<(Vec<i64>, Vec<f32>), String> {
    let e = |e: ort::Error| e.to_string();
    Ok(match elem {
        TensorElementType::Float16 => {
            let (s, v) = out.try_extract_tensor::<half::f16>().map_err(e)?;
            (s.to_vec(), v.iter().map(|x| x.to_f32()).collect())
        }
        TensorElementType::Bfloat16 => {
            let (s, v) = out.try_extract_tensor::<half::bf16>().map_err(e)?;
            (s.to_vec(), v.iter().map(|x| x.to_f32()).collect())
        }
        TensorElementType::Float64 => {
            let (s, v) = out.try_extract_tensor::<f64>().map_err(e)?;
            (s.to_vec(), v.iter().map(|&x| x as f32).collect())
        }
        _ => {
            let (s, v) = out.try_extract_tensor::<f32>().map_err(e)?;
            (s.to_vec(), v.to_vec())
        }
    })
}

/// Checks the embedding output the session reports and works out its length (0 = left to a
/// probe run: a dimension after the batch axis is dynamic).
pub(crate) fn embedding_output(
    session: &Session,
    exposure: embedding::Exposure,
    plan: &Plan,
    yaml: &str,
    model: &str,
) -> Result<EmbeddingOutput, String> {
    let tensor = exposure.tensor.as_str();
    let out = session.outputs().iter().find(|o| o.name() == exposure.output).ok_or_else(|| {
        format!(
            "{yaml}: embedding `{tensor}`: ONNX Runtime does not list `{}` among the outputs of {model}",
            exposure.output
        )
    })?;
    let (elem, dims) = match out.dtype() {
        ValueType::Tensor { ty, shape, .. } => (*ty, shape.to_vec()),
        other => return Err(format!("{yaml}: embedding `{tensor}` of the model {model} is not a tensor ({other:?})")),
    };
    if !matches!(
        elem,
        TensorElementType::Float32
            | TensorElementType::Float16
            | TensorElementType::Bfloat16
            | TensorElementType::Float64
    ) {
        return Err(format!(
            "{yaml}: embedding `{tensor}` of the model {model} has element type {elem}{}; name a floating-point tensor (or a quantized one the graph gives a scale and zero point for)",
            if exposure.dequantize.is_some() { " after dequantization" } else { "" }
        ));
    }
    let shown = || format!("{elem} {}", plan::fmt_dims(&dims));
    let Some(&first) = dims.first() else {
        return Err(format!(
            "{yaml}: embedding `{tensor}` of the model {model} is a scalar ({}); an embedding needs one row of values per image",
            shown()
        ));
    };
    match plan.fixed_batch {
        Some(b) if first > 0 && first as usize != b => {
            return Err(format!(
                "{yaml}: embedding `{tensor}` of the model {model} is {} but the model's batch is {b}; an embedding needs one row of values per image",
                shown()
            ))
        }
        None if first > 0 => {
            return Err(format!(
                "{yaml}: embedding `{tensor}` of the model {model} is {}, a fixed first axis, but the model's batch is dynamic; an embedding needs one row of values per image",
                shown()
            ))
        }
        _ => {}
    }
    let rest = &dims[1..];
    let len = if rest.iter().all(|&d| d > 0) { rest.iter().product::<i64>() as usize } else { 0 };
    let select = |name: &str| {
        RunOptions::new()
            .map(|o| o.with_outputs(OutputSelector::no_default().with(name)))
            .map_err(|e| format!("cannot create ONNX Runtime run options: {e}"))
    };
    Ok(EmbeddingOutput {
        scores_only: select(&plan.output)?,
        embedding_only: select(&exposure.output)?,
        exposure,
        elem,
        dims,
        len,
    })
}
