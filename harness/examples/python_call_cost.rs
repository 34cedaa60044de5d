//! Measures what one call into the Python plugin costs beyond the user's own code: a no-op Python
//! model (it returns preallocated scores without reading the batch) loaded in this process,
//! called on the same 224x224 batch many times. Prints microseconds per call, all of it the
//! plugin's (the FFI adapter, the GIL, the numpy view of the batch, the scores' conversion and
//! copy); the plugin adds its own split (outside / inside the callable) when the model is dropped.
//!
//!     cargo build --release -p shiftbench-python-plugin
//!     SHIFTBENCH_PYTHON_TIMING=1 cargo run --release --example python_call_cost -- target/release/libshiftbench_python.so

use std::path::PathBuf;
use std::time::Instant;

use shiftbench::host::{LoadedModel, Scorer};

const NOOP: &str = "import numpy as np\n\n\nclass NoOp:\n    def __init__(self):\n        self.scores = {}\n\n    def __call__(self, batch):\n        n = len(batch)\n        if n not in self.scores:\n            self.scores[n] = np.zeros((n, 1000), dtype=np.float32)\n        return self.scores[n]\n\n\ndef load():\n    return NoOp()\n";

fn main() {
    let Some(lib) = std::env::args().nth(1).map(PathBuf::from) else {
        eprintln!("usage: python_call_cost <libshiftbench_python.so>");
        std::process::exit(2);
    };
    let dir = std::env::temp_dir().join(format!("python-call-cost-{}", std::process::id()));
    std::fs::create_dir_all(&dir).expect("temp folder");
    std::fs::write(dir.join("noop.py"), NOOP).expect("write");
    std::fs::write(dir.join("noop.yaml"), "plugin: python\npython: noop.py\nname: noop\n").expect("write");
    let mut model = LoadedModel::load(&lib, Some(&dir.join("noop.yaml")), 1).unwrap_or_else(|e| panic!("{e:#}"));
    for batch in [1usize, 8, 32] {
        let input = vec![0.5f32; batch * 3 * 224 * 224];
        for _ in 0..200 {
            model.infer(&input, batch).expect("infer");
        }
        let calls = 5000;
        let t = Instant::now();
        for _ in 0..calls {
            std::hint::black_box(model.infer(&input, batch).expect("infer"));
        }
        let us = t.elapsed().as_secs_f64() / calls as f64 * 1e6;
        println!("batch {batch:>2}: {us:.1} us per call of a no-op Python model ({calls} calls)");
    }
    drop(model);
    let _ = std::fs::remove_dir_all(&dir);
}
