"""A TorchScript model, run by PyTorch itself: the Python plugin's counterpart of the TorchScript
plugin's example (plugins/torchscript/examples/squeezenet1.1-fp32.yaml), for comparing the two.

`load(weights)` returns a torch.nn.Module, so the plugin puts it in eval mode and calls it under
torch.inference_mode() on a tensor that shares the batch's memory.
"""

import torch


class Flatten(torch.nn.Module):
    """The traced SqueezeNet answers [N, 1000, 1, 1]; the plugin takes scores as [N, labels]."""

    def __init__(self, module):
        super().__init__()
        self.module = module

    def forward(self, x):
        return self.module(x).flatten(1)


def load(weights):
    return Flatten(torch.jit.load(weights, map_location="cpu"))
