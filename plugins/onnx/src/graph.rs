//! Just enough of the ONNX file format to expose an inner tensor as a graph output.
//!
//! An `.onnx` file is one protobuf message, `ModelProto`. This module reads and writes the
//! protobuf wire format directly (varints and length-delimited fields; no `protoc`, no generated
//! code) and summarises the parts of the graph the plugin needs: the nodes with their inputs,
//! outputs and operator types, the initializers (weights), the graph's inputs and outputs, the
//! declared element types and shapes (`value_info`), the default-domain opset, and whether any
//! weight lives in an external data file.
//!
//! The fields read (numbers from `onnx.proto`):
//!
//! | message | field |
//! |---|---|
//! | `ModelProto` | 7 `graph`, 8 `opset_import` (`OperatorSetIdProto`: 1 `domain`, 2 `version`) |
//! | `GraphProto` | 1 `node`, 5 `initializer`, 11 `input`, 12 `output`, 13 `value_info` |
//! | `NodeProto` | 1 `input`, 2 `output`, 3 `name`, 4 `op_type`, 5 `attribute`, 7 `domain` |
//! | `TensorProto` | 8 `name`, 14 `data_location` (1 = external) |
//! | `ValueInfoProto` | 1 `name`, 2 `type` (`TypeProto` 1 `tensor_type`: 1 `elem_type`, 2 `shape`) |
//! | `TensorShapeProto` | 1 `dim` (1 `dim_value`, 2 `dim_param`) |
//!
//! Everything else is skipped, and [`with_graph_extra`] copies it through byte for byte.
//! Protobuf lets the fields of a message come in any order and concatenates repeated fields, so
//! appending the bytes of extra `node`/`output` fields to the graph's bytes adds them.

use std::collections::HashMap;

/// A protobuf wire-format error: one sentence, without the file name (the caller adds it).
pub type WireError = String;

/// Reads a base-128 varint at `*pos`, advancing `*pos`.
pub fn read_varint(buf: &[u8], pos: &mut usize) -> Result<u64, WireError> {
    let mut value: u64 = 0;
    for i in 0..10 {
        let Some(&byte) = buf.get(*pos) else {
            return Err(format!("truncated varint at byte {}", *pos));
        };
        *pos += 1;
        let bits = u64::from(byte & 0x7f);
        // The tenth byte may only carry the 64th bit.
        if i == 9 && bits > 1 {
            return Err(format!("varint longer than 64 bits ending at byte {}", *pos));
        }
        value |= bits << (7 * i);
        if byte & 0x80 == 0 {
            return Ok(value);
        }
    }
    Err(format!("varint longer than 10 bytes ending at byte {}", *pos))
}

/// Appends `v` as a base-128 varint.
pub fn write_varint(out: &mut Vec<u8>, mut v: u64) {
    loop {
        let byte = (v & 0x7f) as u8;
        v >>= 7;
        if v == 0 {
            out.push(byte);
            return;
        }
        out.push(byte | 0x80);
    }
}

/// Appends a length-delimited field (wire type 2): a sub-message, a string or bytes.
pub fn write_bytes_field(out: &mut Vec<u8>, number: u32, bytes: &[u8]) {
    write_varint(out, (u64::from(number) << 3) | 2);
    write_varint(out, bytes.len() as u64);
    out.extend_from_slice(bytes);
}

/// Appends a varint field (wire type 0).
pub fn write_varint_field(out: &mut Vec<u8>, number: u32, v: u64) {
    write_varint(out, u64::from(number) << 3);
    write_varint(out, v);
}

/// The value of one field, by wire type.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Value<'a> {
    /// Wire type 0.
    Varint(u64),
    /// Wire type 1.
    Fixed64(u64),
    /// Wire type 2: a sub-message, a string, bytes or a packed repeated field.
    Bytes(&'a [u8]),
    /// Wire type 5.
    Fixed32(u32),
}

/// One field of a message, with the bytes it occupies (key included), for copying it through.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Field<'a> {
    pub number: u32,
    pub value: Value<'a>,
    pub raw: &'a [u8],
}

/// The fields of one message, in order; stops after the first error.
pub struct Fields<'a> {
    buf: &'a [u8],
    pos: usize,
    failed: bool,
}

/// Iterates over the fields of the message `buf`.
pub fn fields(buf: &[u8]) -> Fields<'_> {
    Fields { buf, pos: 0, failed: false }
}

impl<'a> Fields<'a> {
    fn next_field(&mut self) -> Result<Field<'a>, WireError> {
        let start = self.pos;
        let key = read_varint(self.buf, &mut self.pos)?;
        let number = key >> 3;
        if number == 0 || number > u64::from(u32::MAX >> 3) {
            return Err(format!("invalid field number {number} at byte {start}"));
        }
        let take = |pos: &mut usize, n: u64| -> Result<&'a [u8], WireError> {
            let end = usize::try_from(n).ok().and_then(|n| pos.checked_add(n)).filter(|&e| e <= self.buf.len());
            let end = end.ok_or_else(|| {
                format!("field {number} at byte {start} runs past the end of its message ({} bytes)", self.buf.len())
            })?;
            let s = &self.buf[*pos..end];
            *pos = end;
            Ok(s)
        };
        let value = match key & 7 {
            0 => Value::Varint(read_varint(self.buf, &mut self.pos)?),
            1 => Value::Fixed64(u64::from_le_bytes(take(&mut self.pos, 8)?.try_into().expect("8 bytes"))),
            2 => {
                let len = read_varint(self.buf, &mut self.pos)?;
                Value::Bytes(take(&mut self.pos, len)?)
            }
            5 => Value::Fixed32(u32::from_le_bytes(take(&mut self.pos, 4)?.try_into().expect("4 bytes"))),
            w => return Err(format!("unsupported wire type {w} (field {number}) at byte {start}")),
        };
        Ok(Field { number: number as u32, value, raw: &self.buf[start..self.pos] })
    }
}

impl<'a> Iterator for Fields<'a> {
    type Item = Result<Field<'a>, WireError>;

    fn next(&mut self) -> Option<Self::Item> {
        if self.failed || self.pos >= self.buf.len() {
            return None;
        }
        let r = self.next_field();
        self.failed = r.is_err();
        Some(r)
    }
}

fn bytes_of<'a>(f: &Field<'a>, what: &str) -> Result<&'a [u8], WireError> {
    match f.value {
        Value::Bytes(b) => Ok(b),
        _ => Err(format!("{what} (field {}) is not length-delimited", f.number)),
    }
}

fn string_of(f: &Field<'_>, what: &str) -> Result<String, WireError> {
    Ok(String::from_utf8_lossy(bytes_of(f, what)?).into_owned())
}

fn varint_of(f: &Field<'_>, what: &str) -> Result<u64, WireError> {
    match f.value {
        Value::Varint(v) => Ok(v),
        _ => Err(format!("{what} (field {}) is not a varint", f.number)),
    }
}

/// One `NodeProto`.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Node {
    pub name: String,
    pub op_type: String,
    pub domain: String,
    /// Input names; an empty name is an absent optional input.
    pub inputs: Vec<String>,
    pub outputs: Vec<String>,
    /// The `AttributeProto`s, undecoded (field payloads, without the key).
    pub attributes: Vec<Vec<u8>>,
}

impl Node {
    fn parse(buf: &[u8]) -> Result<Node, WireError> {
        let mut n = Node::default();
        for f in fields(buf) {
            let f = f?;
            match f.number {
                1 => n.inputs.push(string_of(&f, "node input")?),
                2 => n.outputs.push(string_of(&f, "node output")?),
                3 => n.name = string_of(&f, "node name")?,
                4 => n.op_type = string_of(&f, "node op_type")?,
                5 => n.attributes.push(bytes_of(&f, "node attribute")?.to_vec()),
                7 => n.domain = string_of(&f, "node domain")?,
                _ => {}
            }
        }
        Ok(n)
    }

    /// The bytes of this node as a `NodeProto`.
    pub fn encode(&self) -> Vec<u8> {
        let mut out = Vec::new();
        for i in &self.inputs {
            write_bytes_field(&mut out, 1, i.as_bytes());
        }
        for o in &self.outputs {
            write_bytes_field(&mut out, 2, o.as_bytes());
        }
        if !self.name.is_empty() {
            write_bytes_field(&mut out, 3, self.name.as_bytes());
        }
        write_bytes_field(&mut out, 4, self.op_type.as_bytes());
        for a in &self.attributes {
            write_bytes_field(&mut out, 5, a);
        }
        if !self.domain.is_empty() {
            write_bytes_field(&mut out, 7, self.domain.as_bytes());
        }
        out
    }

    /// What to call the node in messages: its op type, and its name when it has one.
    pub fn label(&self) -> String {
        if self.name.is_empty() {
            self.op_type.clone()
        } else {
            format!("{} `{}`", self.op_type, self.name)
        }
    }
}

/// A tensor's declared type, as far as `value_info` (or a graph input/output) says.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Declared {
    /// ONNX `TensorProto.DataType` (1 = float, 2 = uint8, 3 = int8, 10 = float16, ...); 0 unknown.
    pub elem_type: i32,
    /// The shape, `-1` for a symbolic or unknown dimension; `None` when no shape is declared.
    pub dims: Option<Vec<i64>>,
}

/// The name of an ONNX `TensorProto.DataType`.
pub fn elem_type_name(t: i32) -> &'static str {
    match t {
        1 => "f32",
        2 => "u8",
        3 => "i8",
        4 => "u16",
        5 => "i16",
        6 => "i32",
        7 => "i64",
        8 => "string",
        9 => "bool",
        10 => "f16",
        11 => "f64",
        12 => "u32",
        13 => "u64",
        16 => "bf16",
        0 => "unknown",
        _ => "other",
    }
}

/// Whether an ONNX `TensorProto.DataType` is an integer type (a quantized activation, perhaps).
pub fn is_integer_type(t: i32) -> bool {
    matches!(t, 2..=7 | 12 | 13)
}

fn parse_value_info(buf: &[u8]) -> Result<(String, Declared), WireError> {
    let mut name = String::new();
    let mut d = Declared::default();
    for f in fields(buf) {
        let f = f?;
        match f.number {
            1 => name = string_of(&f, "value name")?,
            2 => {
                for t in fields(bytes_of(&f, "value type")?) {
                    let t = t?;
                    if t.number == 1 {
                        parse_tensor_type(bytes_of(&t, "tensor type")?, &mut d)?;
                    }
                }
            }
            _ => {}
        }
    }
    Ok((name, d))
}

fn parse_tensor_type(buf: &[u8], d: &mut Declared) -> Result<(), WireError> {
    for f in fields(buf) {
        let f = f?;
        match f.number {
            1 => d.elem_type = varint_of(&f, "elem_type")? as i32,
            2 => {
                let mut dims = Vec::new();
                for dim in fields(bytes_of(&f, "shape")?) {
                    let dim = dim?;
                    if dim.number != 1 {
                        continue;
                    }
                    let mut v = -1;
                    for x in fields(bytes_of(&dim, "dimension")?) {
                        let x = x?;
                        if x.number == 1 {
                            v = varint_of(&x, "dim_value")? as i64;
                        }
                    }
                    dims.push(if v > 0 { v } else { -1 });
                }
                d.dims = Some(dims);
            }
            _ => {}
        }
    }
    Ok(())
}

/// What the plugin needs to know of a model's (top-level) graph.
#[derive(Debug, Clone, Default)]
pub struct Graph {
    /// The nodes, in file order (normally topological).
    pub nodes: Vec<Node>,
    /// Initializer (weight) names.
    pub initializers: Vec<String>,
    /// Graph input names (older models list their initializers here too).
    pub inputs: Vec<String>,
    /// Graph output names.
    pub outputs: Vec<String>,
    /// Declared types from `value_info`, graph inputs and graph outputs.
    pub declared: HashMap<String, Declared>,
    /// The opset version of the default (`ai.onnx`) domain, if imported.
    pub opset: Option<i64>,
    /// Whether some initializer keeps its data in an external file.
    pub external_data: bool,
}

impl Graph {
    /// Summarises the `ModelProto` in `model`.
    pub fn parse(model: &[u8]) -> Result<Graph, WireError> {
        let mut g = Graph::default();
        let mut graphs = 0;
        for f in fields(model) {
            let f = f?;
            match f.number {
                7 => {
                    graphs += 1;
                    g.parse_graph(bytes_of(&f, "graph")?)?;
                }
                8 => {
                    let (mut domain, mut version) = (String::new(), None);
                    for x in fields(bytes_of(&f, "opset_import")?) {
                        let x = x?;
                        match x.number {
                            1 => domain = string_of(&x, "opset domain")?,
                            2 => version = Some(varint_of(&x, "opset version")? as i64),
                            _ => {}
                        }
                    }
                    if domain.is_empty() || domain == "ai.onnx" {
                        g.opset = version.or(g.opset);
                    }
                }
                _ => {}
            }
        }
        if graphs == 0 {
            return Err("it has no graph (ModelProto field 7); is it an ONNX model?".into());
        }
        Ok(g)
    }

    fn parse_graph(&mut self, buf: &[u8]) -> Result<(), WireError> {
        for f in fields(buf) {
            let f = f?;
            match f.number {
                1 => self.nodes.push(Node::parse(bytes_of(&f, "node")?)?),
                5 => {
                    for t in fields(bytes_of(&f, "initializer")?) {
                        let t = t?;
                        match t.number {
                            8 => self.initializers.push(string_of(&t, "initializer name")?),
                            14 => self.external_data |= varint_of(&t, "data_location")? == 1,
                            _ => {}
                        }
                    }
                }
                11..=13 => {
                    let (name, d) = parse_value_info(bytes_of(&f, "value info")?)?;
                    match f.number {
                        11 => self.inputs.push(name.clone()),
                        12 => self.outputs.push(name.clone()),
                        _ => {}
                    }
                    if d != Declared::default() {
                        self.declared.insert(name, d);
                    }
                }
                _ => {}
            }
        }
        Ok(())
    }

    /// The node that produces `tensor`, if any.
    pub fn producer(&self, tensor: &str) -> Option<&Node> {
        self.nodes.iter().find(|n| n.outputs.iter().any(|o| o == tensor))
    }

    /// The nodes that read `tensor`, with the input position.
    pub fn consumers<'g>(&'g self, tensor: &'g str) -> impl Iterator<Item = (&'g Node, usize)> + 'g {
        self.nodes
            .iter()
            .flat_map(move |n| n.inputs.iter().enumerate().filter(move |(_, i)| *i == tensor).map(move |(k, _)| (n, k)))
    }

    /// Whether `name` names any tensor of the graph: a node output, an initializer or an input.
    pub fn has_tensor(&self, name: &str) -> bool {
        self.producer(name).is_some()
            || self.initializers.iter().any(|i| i == name)
            || self.inputs.iter().any(|i| i == name)
    }

    /// The tensors computed from the model's real inputs (not from weights or shapes alone), as
    /// `(node index, output)` in node order: what an embedding can name. Outputs of `Shape` and
    /// `Size` (metadata, not activations) and everything computed only from them are left out.
    pub fn activations(&self) -> Vec<(usize, &str)> {
        use std::collections::HashSet;
        let mut live: HashSet<&str> =
            self.inputs.iter().filter(|i| !self.initializers.contains(i)).map(String::as_str).collect();
        let mut from_input = vec![false; self.nodes.len()];
        // Nodes are normally in topological order (one pass); repeat until nothing changes, for
        // files that are not.
        loop {
            let mut changed = false;
            for (k, n) in self.nodes.iter().enumerate() {
                if from_input[k] || matches!(n.op_type.as_str(), "Shape" | "Size") {
                    continue;
                }
                if n.inputs.iter().any(|i| live.contains(i.as_str())) {
                    from_input[k] = true;
                    changed = true;
                    live.extend(n.outputs.iter().filter(|o| !o.is_empty()).map(String::as_str));
                }
            }
            if !changed {
                break;
            }
        }
        let mut out = Vec::new();
        for (k, n) in self.nodes.iter().enumerate() {
            if from_input[k] {
                out.extend(n.outputs.iter().filter(|o| !o.is_empty()).map(|o| (k, o.as_str())));
            }
        }
        out
    }
}

/// A copy of `model` whose graph has `extra` (the encoded bytes of more `GraphProto` fields,
/// such as `node` and `output`) appended. Every other byte is kept as it was; several `graph`
/// records (protobuf merges them) become one.
pub fn with_graph_extra(model: &[u8], extra: &[u8]) -> Result<Vec<u8>, WireError> {
    let mut graph = Vec::new();
    let mut rest: Vec<&[u8]> = Vec::new();
    let mut graph_at = None;
    for f in fields(model) {
        let f = f?;
        if f.number == 7 {
            graph.extend_from_slice(bytes_of(&f, "graph")?);
            graph_at.get_or_insert(rest.len());
        } else {
            rest.push(f.raw);
        }
    }
    let graph_at = graph_at.ok_or("it has no graph (ModelProto field 7); is it an ONNX model?")?;
    graph.extend_from_slice(extra);
    let mut out = Vec::with_capacity(model.len() + extra.len() + 16);
    for (k, raw) in rest.iter().enumerate() {
        if k == graph_at {
            write_bytes_field(&mut out, 7, &graph);
        }
        out.extend_from_slice(raw);
    }
    if graph_at == rest.len() {
        write_bytes_field(&mut out, 7, &graph);
    }
    Ok(out)
}

/// The bytes of a `GraphProto` `output` field declaring `name` (without a type: ONNX Runtime
/// infers it).
pub fn output_field(name: &str) -> Vec<u8> {
    let mut vi = Vec::new();
    write_bytes_field(&mut vi, 1, name.as_bytes());
    let mut out = Vec::new();
    write_bytes_field(&mut out, 12, &vi);
    out
}

/// The bytes of a `GraphProto` `node` field.
pub fn node_field(node: &Node) -> Vec<u8> {
    let mut out = Vec::new();
    write_bytes_field(&mut out, 1, &node.encode());
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    fn varint(v: u64) -> Vec<u8> {
        let mut out = Vec::new();
        write_varint(&mut out, v);
        out
    }

    #[test]
    fn varints_round_trip_and_reject_garbage() {
        for v in [0, 1, 127, 128, 300, 16_383, 16_384, u32::MAX as u64, 1 << 63, u64::MAX] {
            let b = varint(v);
            let mut pos = 0;
            assert_eq!(read_varint(&b, &mut pos), Ok(v), "{v}");
            assert_eq!(pos, b.len());
        }
        assert_eq!(varint(300), [0xac, 0x02]);
        assert_eq!(varint(u64::MAX).len(), 10);
        // Truncated, too long, more than 64 bits.
        assert!(read_varint(&[0x80], &mut 0).unwrap_err().contains("truncated"));
        assert!(read_varint(&[], &mut 0).unwrap_err().contains("truncated"));
        assert!(read_varint(&[0xff; 11], &mut 0).is_err());
        let mut over = vec![0xff; 9];
        over.push(0x02);
        assert!(read_varint(&over, &mut 0).unwrap_err().contains("64 bits"));
    }

    #[test]
    fn fields_of_every_wire_type() {
        let mut m = Vec::new();
        write_varint_field(&mut m, 1, 150);
        write_bytes_field(&mut m, 2, b"hi");
        m.push((3 << 3) | 1);
        m.extend_from_slice(&7u64.to_le_bytes());
        m.push((4 << 3) | 5);
        m.extend_from_slice(&9u32.to_le_bytes());
        let f: Vec<Field<'_>> = fields(&m).collect::<Result<_, _>>().unwrap();
        assert_eq!(f.len(), 4);
        assert_eq!((f[0].number, f[0].value), (1, Value::Varint(150)));
        assert_eq!(f[0].raw, [0x08, 0x96, 0x01]);
        assert_eq!((f[1].number, f[1].value), (2, Value::Bytes(b"hi")));
        assert_eq!(f[2].value, Value::Fixed64(7));
        assert_eq!(f[3].value, Value::Fixed32(9));
        let raw: Vec<u8> = f.iter().flat_map(|f| f.raw.iter().copied()).collect();
        assert_eq!(raw, m);
    }

    #[test]
    fn malformed_messages_are_errors_not_panics() {
        // A length past the end.
        let e = fields(&[0x12, 0x05, b'a']).next().unwrap().unwrap_err();
        assert!(e.contains("runs past the end"), "{e}");
        // A huge length.
        let mut m = vec![0x12];
        m.extend(varint(u64::MAX));
        assert!(fields(&m).next().unwrap().is_err());
        // Field number 0, group wire types.
        assert!(fields(&[0x00, 0x01]).next().unwrap().unwrap_err().contains("field number 0"));
        assert!(fields(&[0x0b]).next().unwrap().unwrap_err().contains("wire type 3"));
        // Iteration stops after an error.
        let mut it = fields(&[0x0b, 0x08, 0x01]);
        assert!(it.next().unwrap().is_err());
        assert!(it.next().is_none());
        // Not a model at all.
        assert!(Graph::parse(b"this is not protobuf").is_err());
        assert!(Graph::parse(&[]).unwrap_err().contains("no graph"));
        // Every prefix of a real little model is an error or a smaller model, never a panic.
        let model = tiny_model();
        for n in 0..model.len() {
            let _ = Graph::parse(&model[..n]);
            let _ = with_graph_extra(&model[..n], &output_field("x"));
        }
    }

    fn value_info(name: &str, elem: i32, dims: &[i64]) -> Vec<u8> {
        let mut shape = Vec::new();
        for &d in dims {
            let mut dim = Vec::new();
            if d > 0 {
                write_varint_field(&mut dim, 1, d as u64);
            } else {
                write_bytes_field(&mut dim, 2, b"N");
            }
            write_bytes_field(&mut shape, 1, &dim);
        }
        let mut tt = Vec::new();
        write_varint_field(&mut tt, 1, elem as u64);
        write_bytes_field(&mut tt, 2, &shape);
        let mut ty = Vec::new();
        write_bytes_field(&mut ty, 1, &tt);
        let mut vi = Vec::new();
        write_bytes_field(&mut vi, 1, name.as_bytes());
        write_bytes_field(&mut vi, 2, &ty);
        vi
    }

    fn node(op: &str, inputs: &[&str], outputs: &[&str]) -> Node {
        Node {
            op_type: op.into(),
            inputs: inputs.iter().map(|s| s.to_string()).collect(),
            outputs: outputs.iter().map(|s| s.to_string()).collect(),
            ..Node::default()
        }
    }

    /// x -> Conv(w) -> c -> Relu -> r -> GlobalAveragePool -> p -> Flatten -> f (output), plus a
    /// Shape of r (metadata) and an external initializer.
    pub(crate) fn tiny_model() -> Vec<u8> {
        let mut g = Vec::new();
        for n in [
            node("Conv", &["x", "w"], &["c"]),
            node("Relu", &["c"], &["r"]),
            node("Shape", &["r"], &["s"]),
            node("GlobalAveragePool", &["r"], &["p"]),
            node("Flatten", &["p"], &["f"]),
        ] {
            g.extend(node_field(&n));
        }
        let mut init = Vec::new();
        write_bytes_field(&mut init, 8, b"w");
        write_varint_field(&mut init, 14, 1);
        write_bytes_field(&mut g, 5, &init);
        write_bytes_field(&mut g, 11, &value_info("x", 1, &[-1, 3, 8, 8]));
        write_bytes_field(&mut g, 12, &value_info("f", 1, &[-1, 4]));
        write_bytes_field(&mut g, 13, &value_info("p", 1, &[-1, 4, 1, 1]));
        let mut m = Vec::new();
        write_varint_field(&mut m, 1, 8);
        write_bytes_field(&mut m, 2, b"test");
        write_bytes_field(&mut m, 7, &g);
        let mut opset = Vec::new();
        write_bytes_field(&mut opset, 1, b"");
        write_varint_field(&mut opset, 2, 13);
        write_bytes_field(&mut m, 8, &opset);
        let mut ms = Vec::new();
        write_bytes_field(&mut ms, 1, b"com.microsoft");
        write_varint_field(&mut ms, 2, 1);
        write_bytes_field(&mut m, 8, &ms);
        m
    }

    #[test]
    fn a_graph_is_summarised() {
        let g = Graph::parse(&tiny_model()).unwrap();
        assert_eq!(g.nodes.len(), 5);
        assert_eq!(g.nodes[3].op_type, "GlobalAveragePool");
        assert_eq!(g.nodes[0].inputs, ["x", "w"]);
        assert_eq!(g.initializers, ["w"]);
        assert!(g.external_data);
        assert_eq!(g.inputs, ["x"]);
        assert_eq!(g.outputs, ["f"]);
        assert_eq!(g.opset, Some(13));
        assert_eq!(g.declared["p"], Declared { elem_type: 1, dims: Some(vec![-1, 4, 1, 1]) });
        assert_eq!(g.declared["x"].dims, Some(vec![-1, 3, 8, 8]));
        assert_eq!(g.producer("p").unwrap().op_type, "GlobalAveragePool");
        assert!(g.producer("x").is_none());
        let readers: Vec<(&str, usize)> = g.consumers("r").map(|(n, k)| (n.op_type.as_str(), k)).collect();
        assert_eq!(readers, [("Shape", 0), ("GlobalAveragePool", 0)]);
        assert!(g.has_tensor("w") && g.has_tensor("x") && g.has_tensor("p") && !g.has_tensor("q"));
        // Shape's output is metadata, not an activation.
        let acts: Vec<&str> = g.activations().into_iter().map(|(_, t)| t).collect();
        assert_eq!(acts, ["c", "r", "p", "f"]);
    }

    #[test]
    fn extra_graph_fields_are_appended_and_the_rest_kept() {
        let m = tiny_model();
        let mut extra =
            node_field(&Node { name: "dq".into(), ..node("DequantizeLinear", &["p", "s", "z"], &["p_dq"]) });
        extra.extend(output_field("p_dq"));
        let out = with_graph_extra(&m, &extra).unwrap();
        let g = Graph::parse(&out).unwrap();
        assert_eq!(g.outputs, ["f", "p_dq"]);
        assert_eq!(g.nodes.len(), 6);
        assert_eq!(g.nodes[5].name, "dq");
        assert_eq!(g.nodes[5].inputs, ["p", "s", "z"]);
        assert_eq!(g.opset, Some(13));
        // The other fields are the same bytes, in the same order.
        let strip = |b: &[u8]| -> Vec<Vec<u8>> {
            fields(b).map(|f| f.unwrap()).filter(|f| f.number != 7).map(|f| f.raw.to_vec()).collect()
        };
        assert_eq!(strip(&m), strip(&out));
        let numbers: Vec<u32> = fields(&out).map(|f| f.unwrap().number).collect();
        assert_eq!(numbers, [1, 2, 7, 8, 8]);
        // No extra: the same model, byte for byte.
        assert_eq!(with_graph_extra(&m, &[]).unwrap(), m);

        // Two graph records (protobuf merges them) become one, where the first was.
        let mut split = Vec::new();
        write_varint_field(&mut split, 1, 8);
        let g_bytes: Vec<u8> = fields(&m)
            .map(|f| f.unwrap())
            .find(|f| f.number == 7)
            .map(|f| match f.value {
                Value::Bytes(b) => b.to_vec(),
                _ => unreachable!(),
            })
            .unwrap();
        let cut = node_field(&node("Conv", &["x", "w"], &["c"])).len();
        write_bytes_field(&mut split, 7, &g_bytes[..cut]);
        write_bytes_field(&mut split, 3, b"v");
        write_bytes_field(&mut split, 7, &g_bytes[cut..]);
        let joined = with_graph_extra(&split, &output_field("r")).unwrap();
        let numbers: Vec<u32> = fields(&joined).map(|f| f.unwrap().number).collect();
        assert_eq!(numbers, [1, 7, 3]);
        let g = Graph::parse(&joined).unwrap();
        assert_eq!((g.nodes.len(), g.outputs.clone()), (5, vec!["f".to_string(), "r".to_string()]));
    }

    #[test]
    fn node_encoding_round_trips() {
        let n = Node {
            name: "n".into(),
            op_type: "DequantizeLinear".into(),
            domain: "com.example".into(),
            inputs: vec!["a".into(), "".into(), "c".into()],
            outputs: vec!["o".into()],
            attributes: vec![vec![0x0a, 0x01, b'k']],
        };
        assert_eq!(Node::parse(&n.encode()).unwrap(), n);
        assert_eq!(n.label(), "DequantizeLinear `n`");
        assert_eq!(elem_type_name(10), "f16");
        assert!(is_integer_type(2) && is_integer_type(3) && !is_integer_type(1) && !is_integer_type(10));
    }
}
