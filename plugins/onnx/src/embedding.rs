//! `embedding: <tensor>`: which tensor of the graph, and how the model is changed to expose it.
//!
//! ONNX Runtime returns only graph outputs, so the plugin adds the named tensor as an output of
//! its in-memory copy of the model (the file is never changed): one `output { name }` field
//! appended to the graph (see [`crate::graph`]); ONNX Runtime infers its type and shape. An
//! integer tensor of a quantized model (`QLinear*` operators, say `u8` with a scale and a zero
//! point) is dequantized in the graph first, by one added `DequantizeLinear` node whose scale and
//! zero point are those the model itself uses for that tensor; the embedding is then the real
//! values the quantized numbers stand for.
//!
//! Everything here is pure (bytes in, bytes out), so it is tested without ONNX Runtime.

use crate::graph::{self, Declared, Graph, Node};

/// Where a quantized tensor's scale and zero point come from.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Quantization {
    pub scale: String,
    /// `None` when the model gives none (zero).
    pub zero_point: Option<String>,
    /// The attributes (`axis`, ...) of the model's own `QuantizeLinear`/`DequantizeLinear` for
    /// the tensor, when that is where the scale came from.
    pub attributes: Vec<Vec<u8>>,
}

/// How the model is changed to expose the embedding.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Exposure {
    /// The tensor named by `embedding:`.
    pub tensor: String,
    /// The graph output to read: the tensor itself, or its dequantized copy.
    pub output: String,
    /// The operator that computes the tensor (`GlobalAveragePool`, ...), for messages.
    pub producer: String,
    /// The tensor's declared type, if the file declares one.
    pub declared: Option<Declared>,
    /// Set when an integer tensor is dequantized in the graph.
    pub dequantize: Option<Quantization>,
    /// The model bytes to load; `None` when the tensor already is a graph output (the file is
    /// loaded as it is).
    pub model: Option<Vec<u8>>,
}

/// How many candidate tensors an error lists.
pub const CANDIDATES_SHOWN: usize = 12;

/// Ops that only move or reshape values: a quantized tensor keeps its scale through them.
const SHAPE_OPS: &[&str] = &["Reshape", "Flatten", "Squeeze", "Unsqueeze", "Transpose", "Identity"];

/// The positions of the output's scale and zero point among the inputs of the quantized
/// operators ONNX Runtime's quantizer writes.
fn output_quantization_inputs(op: &str) -> Option<(usize, usize)> {
    Some(match op {
        "QuantizeLinear" => (1, 2),
        "QLinearConv" | "QLinearMatMul" | "QLinearAdd" | "QLinearMul" => (6, 7),
        "QLinearGlobalAveragePool"
        | "QLinearAveragePool"
        | "QLinearSigmoid"
        | "QLinearLeakyRelu"
        | "QLinearSoftmax" => (3, 4),
        "QLinearConcat" => (0, 1),
        _ => return None,
    })
}

fn quantization_at(node: &Node, scale: usize, zero_point: usize) -> Option<Quantization> {
    let scale = node.inputs.get(scale).filter(|s| !s.is_empty())?.clone();
    let zero_point = node.inputs.get(zero_point).filter(|s| !s.is_empty()).cloned();
    let attributes = if matches!(node.op_type.as_str(), "QuantizeLinear" | "DequantizeLinear") {
        node.attributes.clone()
    } else {
        Vec::new()
    };
    Some(Quantization { scale, zero_point, attributes })
}

/// The scale and zero point the model uses for the quantized `tensor`: from the operator that
/// writes it (`QuantizeLinear`, `QLinear*`), or else from one that reads it as a quantized input
/// (`DequantizeLinear`, or a `QLinear*` operator's `x, x_scale, x_zero_point` triple), looking
/// through reshapes on either side. `None` when the graph does not say.
pub fn quantization(g: &Graph, tensor: &str) -> Option<Quantization> {
    // Up: the writer, through reshapes.
    let mut t = tensor.to_string();
    for _ in 0..g.nodes.len() + 1 {
        let Some(p) = g.producer(&t) else { break };
        if let Some((s, z)) = output_quantization_inputs(&p.op_type) {
            if let Some(q) = quantization_at(p, s, z) {
                return Some(q);
            }
        }
        match (SHAPE_OPS.contains(&p.op_type.as_str()), p.inputs.first()) {
            (true, Some(i)) if !i.is_empty() => t = i.clone(),
            _ => break,
        }
    }
    // Down: the readers, through reshapes.
    let mut queue = vec![tensor.to_string()];
    let mut seen = std::collections::HashSet::new();
    while let Some(t) = queue.pop() {
        if !seen.insert(t.clone()) {
            continue;
        }
        for (n, k) in g.consumers(&t) {
            let op = n.op_type.as_str();
            if (op == "DequantizeLinear" && k == 0) || (op.starts_with("QLinear") && k + 2 < n.inputs.len()) {
                if let Some(q) = quantization_at(n, k + 1, k + 2) {
                    return Some(q);
                }
            } else if SHAPE_OPS.contains(&op) && k == 0 {
                queue.extend(n.outputs.first().cloned());
            }
        }
    }
    None
}

/// Edit distance between two strings (by characters).
pub fn edit_distance(a: &str, b: &str) -> usize {
    let b: Vec<char> = b.chars().collect();
    let mut prev: Vec<usize> = (0..=b.len()).collect();
    for (i, ca) in a.chars().enumerate() {
        let mut cur = vec![i + 1; b.len() + 1];
        for (j, cb) in b.iter().enumerate() {
            cur[j + 1] = (prev[j] + usize::from(ca != *cb)).min(prev[j + 1] + 1).min(cur[j] + 1);
        }
        prev = cur;
    }
    prev[b.len()]
}

/// The tensors an embedding could name, best first: those whose names contain `wanted` or are
/// contained in it, then those a small edit distance away (ignoring case, closest first); then those whose operator's name contains `wanted` (`pool` finds `GlobalAveragePool`
/// outputs); then the rest from the last node back (the pooled features sit near the output).
/// Each as `` `name` (OpType) ``; at most `cap`, and how many more there are.
pub fn candidates(g: &Graph, wanted: &str, cap: usize) -> (Vec<String>, usize) {
    let acts = g.activations();
    let w = wanted.trim().to_lowercase();
    let limit = (w.chars().count() / 3).max(2);
    let mut ranked = Vec::new();
    for (order, (node, name)) in acts.iter().rev().enumerate() {
        let op = &g.nodes[*node].op_type;
        let l = name.to_lowercase();
        let d = edit_distance(&w, &l);
        let rank = if w.len() >= 2 && (l.contains(&w) || w.contains(&l)) {
            (0, d)
        } else if d <= limit {
            (1, d)
        } else if w.len() >= 3 && op.to_lowercase().contains(&w) {
            (2, 0)
        } else {
            (3, 0)
        };
        ranked.push((rank, order, format!("`{name}` ({op})")));
    }
    ranked.sort();
    let more = ranked.len().saturating_sub(cap);
    (ranked.into_iter().take(cap).map(|(_, _, l)| l).collect(), more)
}

/// `` `a` (Op), `b` (Op) and 3 more `` for messages.
pub fn candidate_list(g: &Graph, wanted: &str) -> String {
    let (names, more) = candidates(g, wanted, CANDIDATES_SHOWN);
    if names.is_empty() {
        return "the graph has no node outputs computed from its inputs".into();
    }
    let more = if more > 0 { format!(" (and {more} more)") } else { String::new() };
    format!("{}{more}", names.join(", "))
}

/// Names in messages: the YAML file and the model file.
#[derive(Debug, Clone, Copy)]
pub struct Files<'a> {
    pub yaml: &'a str,
    pub model: &'a str,
}

fn unused_name(g: &Graph, base: &str) -> String {
    let mut name = base.to_string();
    let mut k = 1;
    while g.has_tensor(&name) || g.outputs.contains(&name) {
        k += 1;
        name = format!("{base}_{k}");
    }
    name
}

/// Checks `wanted` against the graph and works out how to expose it (see the module docs).
/// `bytes` is the model file's content. Every error is one sentence naming both files.
pub fn expose(g: &Graph, bytes: &[u8], wanted: &str, f: Files<'_>) -> Result<Exposure, String> {
    let Files { yaml, model } = f;
    if wanted.trim().is_empty() {
        return Err(format!(
            "{yaml}: embedding is empty; name a tensor of the model {model}, such as {}",
            candidate_list(g, wanted)
        ));
    }
    let Some(producer) = g.producer(wanted) else {
        let what = if g.initializers.iter().any(|i| i == wanted) {
            "a weight (an initializer) of the model, not computed from the image"
        } else if g.inputs.iter().any(|i| i == wanted) {
            "an input of the model, not computed from the image"
        } else {
            "not a tensor of the model"
        };
        return Err(format!(
            "{yaml}: embedding `{wanted}` is {what} {model}; name a node output, such as (closest first, then from the output back) {}",
            candidate_list(g, wanted)
        ));
    };
    let declared = g.declared.get(wanted).cloned();
    let integer = declared.as_ref().map(|d| graph::is_integer_type(d.elem_type));
    let float = declared.as_ref().is_some_and(|d| d.elem_type != 0 && !graph::is_integer_type(d.elem_type));
    // Dequantize what is (or, undeclared, looks) quantized.
    let dequantize = if float { None } else { quantization(g, wanted) };
    if integer == Some(true) && dequantize.is_none() {
        return Err(format!(
            "{yaml}: embedding `{wanted}` of the model {model} is {} and the graph gives no scale and zero point for it; name a floating-point tensor",
            graph::elem_type_name(declared.as_ref().map_or(0, |d| d.elem_type))
        ));
    }
    let mut extra = Vec::new();
    let output = match &dequantize {
        Some(q) => {
            if g.opset.is_some_and(|v| v < 10) {
                return Err(format!(
                    "{yaml}: embedding `{wanted}` of the model {model} is quantized, and dequantizing it needs opset 10 or later (the model imports opset {})",
                    g.opset.unwrap_or(0)
                ));
            }
            let out = unused_name(g, &format!("{wanted}/dequantized_by_shiftbench"));
            let node = Node {
                name: unused_name(g, "shiftbench_embedding_dequantize"),
                op_type: "DequantizeLinear".into(),
                domain: String::new(),
                inputs: [Some(wanted.to_string()), Some(q.scale.clone()), q.zero_point.clone()]
                    .into_iter()
                    .flatten()
                    .collect(),
                outputs: vec![out.clone()],
                attributes: q.attributes.clone(),
            };
            extra.extend(graph::node_field(&node));
            extra.extend(graph::output_field(&out));
            out
        }
        None => {
            if !g.outputs.iter().any(|o| o == wanted) {
                extra.extend(graph::output_field(wanted));
            }
            wanted.to_string()
        }
    };
    let bytes = if extra.is_empty() {
        None
    } else {
        Some(graph::with_graph_extra(bytes, &extra).map_err(|e| format!("cannot read the model {model}: {e}"))?)
    };
    Ok(Exposure { tensor: wanted.to_string(), output, producer: producer.label(), declared, dequantize, model: bytes })
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::graph::{node_field, output_field, write_bytes_field, write_varint_field};

    fn node(op: &str, inputs: &[&str], outputs: &[&str]) -> Node {
        Node {
            op_type: op.into(),
            inputs: inputs.iter().map(|s| s.to_string()).collect(),
            outputs: outputs.iter().map(|s| s.to_string()).collect(),
            ..Node::default()
        }
    }

    fn model(nodes: &[Node], inits: &[&str], inputs: &[&str], outputs: &[&str], opset: u64) -> Vec<u8> {
        let mut g = Vec::new();
        for n in nodes {
            g.extend(node_field(n));
        }
        for i in inits {
            let mut t = Vec::new();
            write_bytes_field(&mut t, 8, i.as_bytes());
            write_bytes_field(&mut g, 5, &t);
        }
        for i in inputs {
            let mut vi = Vec::new();
            write_bytes_field(&mut vi, 1, i.as_bytes());
            write_bytes_field(&mut g, 11, &vi);
        }
        for o in outputs {
            g.extend(output_field(o));
        }
        let mut m = Vec::new();
        write_bytes_field(&mut m, 7, &g);
        let mut op = Vec::new();
        write_varint_field(&mut op, 2, opset);
        write_bytes_field(&mut m, 8, &op);
        m
    }

    /// A squeezenet-like float graph.
    fn float_model() -> Vec<u8> {
        model(
            &[
                node("Conv", &["data", "w", "b"], &["conv1"]),
                node("Relu", &["conv1"], &["relu1"]),
                node("Conv", &["relu1", "w10", "b10"], &["conv10_1"]),
                node("Relu", &["conv10_1"], &["conv10_2"]),
                node("GlobalAveragePool", &["conv10_2"], &["pool10_1"]),
                node("Shape", &["pool10_1"], &["shape"]),
                node("Flatten", &["pool10_1"], &["flat"]),
                node("Softmax", &["flat"], &["soft"]),
                node("Reshape", &["soft", "shape"], &["prob"]),
            ],
            &["w", "b", "w10", "b10"],
            &["data", "w", "b", "w10", "b10"],
            &["prob"],
            13,
        )
    }

    /// A mobilenet-int8-like tail: QLinearGlobalAveragePool -> Reshape -> QLinearMatMul.
    fn quantized_model() -> Vec<u8> {
        model(
            &[
                node("QuantizeLinear", &["input", "in_s", "in_z"], &["input_q"]),
                node("QLinearConv", &["input_q", "in_s", "in_z", "w", "w_s", "w_z", "c_s", "c_z"], &["c_q"]),
                node("QLinearGlobalAveragePool", &["c_q", "c_s", "c_z", "p_s", "p_z"], &["p_q"]),
                node("Reshape", &["p_q", "shape"], &["r_q"]),
                node("QLinearMatMul", &["r_q", "p_s", "p_z", "fc", "fc_s", "fc_z", "o_s", "o_z"], &["o_q"]),
                node("DequantizeLinear", &["o_q", "o_s", "o_z"], &["output"]),
            ],
            &[
                "in_s", "in_z", "w", "w_s", "w_z", "c_s", "c_z", "p_s", "p_z", "shape", "fc", "fc_s", "fc_z", "o_s",
                "o_z",
            ],
            &["input"],
            &["output"],
            12,
        )
    }

    const F: Files<'static> = Files { yaml: "m.yaml", model: "m.onnx" };

    #[test]
    fn an_inner_float_tensor_becomes_an_output() {
        let bytes = float_model();
        let g = Graph::parse(&bytes).unwrap();
        let e = expose(&g, &bytes, "pool10_1", F).unwrap();
        assert_eq!(
            (e.tensor.as_str(), e.output.as_str(), e.producer.as_str()),
            ("pool10_1", "pool10_1", "GlobalAveragePool")
        );
        assert_eq!(e.dequantize, None);
        let g2 = Graph::parse(e.model.as_ref().unwrap()).unwrap();
        assert_eq!(g2.outputs, ["prob", "pool10_1"]);
        assert_eq!(g2.nodes.len(), g.nodes.len());
        // Already an output: the file is loaded as it is.
        let e = expose(&g, &bytes, "prob", F).unwrap();
        assert_eq!((e.output.as_str(), e.model.is_none()), ("prob", true));
    }

    #[test]
    fn a_quantized_tensor_is_dequantized_with_the_models_own_scale() {
        let bytes = quantized_model();
        let g = Graph::parse(&bytes).unwrap();
        // From the writer (QLinearGlobalAveragePool's y_scale, y_zero_point) ...
        let q = quantization(&g, "p_q").unwrap();
        assert_eq!((q.scale.as_str(), q.zero_point.as_deref()), ("p_s", Some("p_z")));
        // ... through a reshape ...
        assert_eq!(quantization(&g, "r_q").unwrap().scale, "p_s");
        // ... from QuantizeLinear and QLinearConv.
        assert_eq!(quantization(&g, "input_q").unwrap().scale, "in_s");
        assert_eq!(quantization(&g, "c_q").unwrap().scale, "c_s");
        assert_eq!(quantization(&g, "o_q").unwrap().scale, "o_s");
        // A float tensor has none.
        assert_eq!(quantization(&g, "output"), None);

        let e = expose(&g, &bytes, "p_q", F).unwrap();
        assert_eq!(e.output, "p_q/dequantized_by_shiftbench");
        let g2 = Graph::parse(e.model.as_ref().unwrap()).unwrap();
        assert_eq!(g2.outputs, ["output", "p_q/dequantized_by_shiftbench"]);
        let dq = g2.nodes.last().unwrap();
        assert_eq!(dq.op_type, "DequantizeLinear");
        assert_eq!(dq.inputs, ["p_q", "p_s", "p_z"]);
        assert_eq!(dq.outputs, ["p_q/dequantized_by_shiftbench"]);
    }

    #[test]
    fn from_a_reader_when_the_writer_says_nothing() {
        // A Reshape of an (unknown) writer's output, read by a QLinear op and a DequantizeLinear.
        let bytes = model(
            &[
                node("Custom", &["x"], &["a"]),
                node("Reshape", &["a", "s"], &["b"]),
                node("QLinearMatMul", &["b", "b_s", "b_z", "w", "w_s", "w_z", "y_s", "y_z"], &["y"]),
                node("Custom", &["x"], &["c"]),
                node("DequantizeLinear", &["c", "c_s"], &["d"]),
            ],
            &["s", "b_s", "b_z", "w", "w_s", "w_z", "y_s", "y_z", "c_s"],
            &["x"],
            &["y", "d"],
            13,
        );
        let g = Graph::parse(&bytes).unwrap();
        let q = quantization(&g, "a").unwrap();
        assert_eq!((q.scale.as_str(), q.zero_point.as_deref()), ("b_s", Some("b_z")));
        let q = quantization(&g, "c").unwrap();
        assert_eq!((q.scale.as_str(), q.zero_point), ("c_s", None));
        assert_eq!(quantization(&g, "x"), None);
    }

    #[test]
    fn unknown_names_list_candidates_closest_first() {
        let bytes = float_model();
        let g = Graph::parse(&bytes).unwrap();
        let e = expose(&g, &bytes, "pool10", F).unwrap_err();
        println!("{e}");
        assert!(e.starts_with("m.yaml: embedding `pool10` is not a tensor of the model m.onnx"), "{e}");
        assert!(e.contains("`pool10_1` (GlobalAveragePool), "), "{e}");
        let first = e.find("`pool10_1`").unwrap();
        assert!(first < e.find("`soft`").unwrap() && first < e.find("`conv10_2`").unwrap(), "{e}");
        // Metadata (the Shape) is no candidate.
        assert!(!e.contains("`shape`"), "{e}");
        // An operator's name finds its outputs.
        let (c, _) = candidates(&g, "pool", 2);
        assert_eq!(c, ["`pool10_1` (GlobalAveragePool)", "`prob` (Reshape)"]);
        let (c, _) = candidates(&g, "softmax", 1);
        assert_eq!(c, ["`soft` (Softmax)"]);
        // Far from every name: from the output back.
        let (c, more) = candidates(&g, "zzzzzzzzzzzz", 3);
        assert_eq!(c, ["`prob` (Reshape)", "`soft` (Softmax)", "`flat` (Flatten)"]);
        assert_eq!(more, 5);
        assert!(candidate_list(&g, "zzzzzzzzzzzz").ends_with("`conv1` (Conv)"));
        // Weights and inputs are named as such.
        let e = expose(&g, &bytes, "w10", F).unwrap_err();
        assert!(e.contains("`w10` is a weight"), "{e}");
        let e = expose(&g, &bytes, "data", F).unwrap_err();
        assert!(e.contains("`data` is an input"), "{e}");
        let e = expose(&g, &bytes, " ", F).unwrap_err();
        assert!(e.contains("embedding is empty") && e.contains("`prob`"), "{e}");
    }

    #[test]
    fn the_cap_says_how_many_more() {
        let nodes: Vec<Node> =
            (0..30).map(|i| node("Relu", &[if i == 0 { "x" } else { "" }], &[&format!("t{i}")])).collect();
        // Chain them: t{i} reads t{i-1}.
        let nodes: Vec<Node> = nodes
            .into_iter()
            .enumerate()
            .map(|(i, mut n)| {
                if i > 0 {
                    n.inputs = vec![format!("t{}", i - 1)];
                }
                n
            })
            .collect();
        let bytes = model(&nodes, &[], &["x"], &["t29"], 13);
        let g = Graph::parse(&bytes).unwrap();
        let list = candidate_list(&g, "something_else_entirely");
        assert!(list.starts_with("`t29` (Relu), `t28` (Relu)"), "{list}");
        assert!(list.ends_with(&format!("(and {} more)", 30 - CANDIDATES_SHOWN)), "{list}");
        assert_eq!(edit_distance("pool10", "pool10_1"), 2);
        assert_eq!(edit_distance("", "abc"), 3);
        assert_eq!(edit_distance("kitten", "sitting"), 3);
    }

    #[test]
    fn an_old_opset_cannot_dequantize() {
        let bytes = model(
            &[node("QuantizeLinear", &["x", "s", "z"], &["q"]), node("DequantizeLinear", &["q", "s", "z"], &["y"])],
            &["s", "z"],
            &["x"],
            &["y"],
            9,
        );
        let g = Graph::parse(&bytes).unwrap();
        let e = expose(&g, &bytes, "q", F).unwrap_err();
        assert!(e.contains("opset 10") && e.contains("opset 9"), "{e}");
    }
}
