"""An ONNX model run by ONNX Runtime's Python package: the Python plugin's counterpart of the ONNX
plugin's example (plugins/onnx/examples/mobilenetv2-12-int8.yaml), for comparing the two.

`load(model)` returns a callable: the batch (a read-only float32 numpy array [N, 3, H, W]) in,
the session's output [N, 1000] out.
"""

import os

import onnxruntime as ort


class Session:
    def __init__(self, model, threads):
        options = ort.SessionOptions()
        options.graph_optimization_level = ort.GraphOptimizationLevel.ORT_ENABLE_ALL
        # The harness's threads per model copy (`--model-threads`, or its share of the cores).
        options.intra_op_num_threads = threads
        options.inter_op_num_threads = 1
        self.session = ort.InferenceSession(model, options, providers=["CPUExecutionProvider"])
        self.input = self.session.get_inputs()[0].name

    def __call__(self, batch):
        return self.session.run(None, {self.input: batch})[0]


def load(model):
    return Session(model, int(os.environ.get("SHIFTBENCH_MODEL_THREADS", "0")))
