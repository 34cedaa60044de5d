//! The same trained SqueezeNet as ONNX and as TorchScript, through the harness's own decode and
//! preprocessing on the 1,000 real sample photos: the two backends agree on top-1 for at least
//! 99.9% of images and every output probability is within 1e-4.

mod common;

use shiftbench::data::suite::Suite;
use shiftbench::host::{LoadedModel, Scorer};
use shiftbench::imaging::{load_tensor, Normaliser};
use shiftbench::run::topk::top_k;

#[test]
fn squeezenet_onnx_and_torchscript_agree() {
    let test = "cross_backend";
    let Some(_) = common::shared_data(test) else { return };
    let Some(ts_lib) = common::plugin_lib_if_built("shiftbench_torchscript", test) else { return };
    let repo = common::repo();
    let onnx_lib = common::plugin_lib("shiftbench_onnx");
    // One thread each: two runtimes whose idle threads spin would starve each other on few cores.
    let mut onnx =
        LoadedModel::load(&onnx_lib, Some(&repo.join("plugins/onnx/examples/squeezenet1.1-fp32.yaml")), 1).unwrap();
    let mut ts =
        LoadedModel::load(&ts_lib, Some(&repo.join("plugins/torchscript/examples/squeezenet1.1-fp32.yaml")), 1)
            .unwrap();
    assert_eq!(onnx.card().preprocess, ts.card().preprocess);
    assert_eq!(onnx.labels(), ts.labels());
    let spec = onnx.card().preprocess;
    let norm = Normaliser::new(&spec);
    let suite = Suite::load(&repo.join("suites/imagenet-samples.yaml")).unwrap();
    assert_eq!(suite.samples.len(), 1000);
    let (mut same_top1, mut max_diff) = (0usize, 0f32);
    for s in &suite.samples {
        let x = load_tensor(&s.image.read().unwrap(), &spec, &norm).unwrap();
        let a = onnx.infer(&x, 1).unwrap();
        let b = ts.infer(&x, 1).unwrap();
        same_top1 += (top_k(&a, 1) == top_k(&b, 1)) as usize;
        for (p, q) in a.iter().zip(&b) {
            max_diff = max_diff.max((p - q).abs());
        }
    }
    eprintln!("squeezenet1.1-fp32 ONNX vs TorchScript: same top-1 on {same_top1}/1000, max |p - q| = {max_diff:e}");
    assert!(same_top1 >= 999, "{same_top1}");
    assert!(max_diff <= 1e-4, "{max_diff}");
}
