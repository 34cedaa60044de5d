# The Python side of shiftbench's Python plugin: imports the user's code, calls its factory, and
# wraps what it returns as a `Runner` that the plugin (lib.rs) calls once per batch.
#
# The plugin tells one kind of failure from another by the exception class:
#   LoadError    a sentence for the user; the model does not load
#   BatchError   the user's code raised on this batch: its samples failed, the model goes on
#   OutputError  what the model returned cannot be scores (shape, dtype): the model is stopped
# Anything else raised here is a bug of this file, and stops the model.

import gc
import importlib
import importlib.util
import os
import sys
import time
import traceback
import warnings
import weakref

try:
    import numpy as np
except ImportError as e:  # numpy is the one package the plugin itself needs
    np = None
    _numpy_error = e


class LoadError(Exception):
    pass


class BatchError(Exception):
    pass


class OutputError(Exception):
    pass


def _where(tb):
    """`file:line in function` of the innermost frame of a traceback, if any."""
    frames = traceback.extract_tb(tb)
    if not frames:
        return ""
    f = frames[-1]
    return f" (at {f.filename}:{f.lineno} in {f.name})"


def last_line(e):
    """The last line of an exception as Python prints it: `ValueError: bad input`, and where."""
    line = traceback.format_exception_only(type(e), e)[-1].strip()
    return line + _where(e.__traceback__)


def _import(kind, source, env):
    if np is None:
        raise LoadError(
            f"the Python plugin needs numpy, which {env} cannot import ({_numpy_error}); "
            "install numpy there (pip install numpy)"
        )
    try:
        if kind == "file":
            if not os.path.isfile(source):
                raise LoadError(f"the Python file {source} does not exist")
            name = os.path.splitext(os.path.basename(source))[0]
            spec = importlib.util.spec_from_file_location(name, source)
            module = importlib.util.module_from_spec(spec)
            sys.modules[name] = module
            spec.loader.exec_module(module)
            return module
        return importlib.import_module(source)
    except LoadError:
        raise
    except SyntaxError as e:
        raise LoadError(f"{e.filename}:{e.lineno}: syntax error: {e.msg}") from None
    except ImportError as e:
        what = f"the module {e.name}" if e.name else "a module"
        if kind == "module" and e.name and (source == e.name or source.startswith(e.name + ".")):
            raise LoadError(f"cannot import {source}: neither the YAML's folder nor {env} has it") from None
        raise LoadError(
            f"{source}: cannot import {what} ({last_line(e)}); the model's packages must be installed in {env}"
        ) from None
    except Exception as e:
        raise LoadError(f"{source}: importing it raised {last_line(e)}") from None


class Runner:
    """The user's model, called on batches (numpy views over the harness's input buffer)."""

    def __init__(self, obj, source, device, embedding, threads):
        self.obj = obj
        self.source = source
        self.device = device
        self.torch = None
        torch = sys.modules.get("torch")
        if torch is not None and isinstance(obj, torch.nn.Module):
            self.torch = torch
            if threads > 0:
                torch.set_num_threads(threads)
            obj.eval()
            try:
                obj.to(device)
            except Exception as e:
                raise LoadError(f"{source}: cannot move the model to {device}: {last_line(e)}") from None
            # The batch is a read-only view (the harness's buffer): torch warns once per process
            # that it may not be written to, which is as it should be.
            warnings.filterwarnings("ignore", message="The given NumPy array is not writable")
            self.kind = f"torch.nn.Module {type(obj).__name__} on {device}, eval mode, inference_mode"
        elif callable(obj):
            if device != "cpu":
                raise LoadError(
                    f"{source}: `device: {device}` moves a torch.nn.Module; the factory returned a "
                    f"{type(obj).__name__}, which places itself"
                )
            self.kind = f"callable {type(obj).__name__}"
        else:
            raise LoadError(
                f"{source}: the factory returned a {type(obj).__name__}, which is neither callable nor a "
                "torch.nn.Module; return a function of a float32 batch [N, 3, H, W] giving scores [N, labels]"
            )
        self.embed_fn = None
        self.hooked = None
        self.embedding = "none"
        if embedding is not None:
            if self.torch is None:
                raise LoadError(
                    f"`embedding: {embedding}` names a submodule of a torch.nn.Module, but the factory returned a "
                    f"{type(obj).__name__}; give the model an embed(batch) method instead"
                )
            try:
                sub = obj.get_submodule(embedding)
            except AttributeError:
                names = ", ".join(n for n, _ in obj.named_children())
                raise LoadError(f"`embedding: {embedding}`: the model has no such submodule (its children: {names})") from None
            sub.register_forward_hook(self._hook)
            self.embedding = f"output of submodule `{embedding}` (forward hook)"
        elif callable(getattr(obj, "embed", None)):
            self.embed_fn = obj.embed
            self.embedding = "the model's embed(batch) method"
        # Nanoseconds spent inside the user's callable, and batches, since load (for the overhead
        # figure the plugin prints with SHIFTBENCH_PYTHON_TIMING=1).
        self.inside_ns = 0
        self.calls = 0
        self._batch = None

    def _hook(self, module, inputs, output):
        self.hooked = output

    def has_embedding(self):
        return self.embed_fn is not None or self.embedding != "none"

    def _call(self, fn, x):
        if self.torch is None:
            return fn(x)
        with self.torch.inference_mode():
            t = self.torch.from_numpy(x)
            if self.device != "cpu":
                t = t.to(self.device)
            return fn(t)

    def _timed(self, fn, x):
        start = time.perf_counter_ns()
        try:
            return self._call(fn, x)
        except Exception as e:
            failure = last_line(e)
            # The traceback's frames hold the batch: let them go now, so the view of the
            # harness's buffer is released when the call returns.
            e.__traceback__ = None
        finally:
            self.inside_ns += time.perf_counter_ns() - start
            self.calls += 1
        raise BatchError(failure)

    def _batch_of(self, view, shape):
        """The batch as a read-only numpy array over `view`, remembered (weakly) for `kept`."""
        x = np.frombuffer(view, dtype=np.float32).reshape(shape)
        self._batch = weakref.ref(x)
        return x

    def kept(self):
        """Whether the last batch outlived its call (after a garbage collection, in case only a
        reference cycle holds it): the model kept it, or a view of it, or a tensor over it."""
        ref, self._batch = self._batch, None
        if ref is None or ref() is None:
            return False
        gc.collect()
        return ref() is not None

    def infer(self, view, shape, labels):
        """Scores of a batch: float32, C-contiguous, [N, labels] (labels None: any width)."""
        x = self._batch_of(view, shape)
        out = self._timed(self.obj, x)
        del x
        return self._array(out, "scores", shape[0], labels)

    def embed(self, view, shape, width):
        """Embeddings of a batch: float32, C-contiguous, [N, width] (width None: any)."""
        x = self._batch_of(view, shape)
        if self.embed_fn is not None:
            out = self._timed(self.embed_fn, x)
        else:
            self.hooked = None
            self._timed(self.obj, x)
            out, self.hooked = self.hooked, None
            if out is None:
                raise OutputError(f"{self.embedding}: the submodule did not run during the forward pass")
        del x
        n = shape[0]
        a = self._array(out, "an embedding", n, None, flatten=True)
        if width is not None and a.shape[1] != width:
            raise OutputError(
                f"{self.embedding} gave {a.shape[1]} values per image for a batch of {n}, but {width} at load"
            )
        return a

    def _array(self, out, what, n, width, flatten=False):
        torch = self.torch or sys.modules.get("torch")
        if torch is not None and isinstance(out, torch.Tensor):
            out = out.detach()
            if out.is_complex() or out.dtype == torch.bool:
                raise OutputError(f"the model returned {what} of dtype {out.dtype}; expected real numbers")
            out = out.to("cpu", torch.float32).numpy()
        elif not isinstance(out, np.ndarray):
            if not isinstance(out, (list, tuple)):
                raise OutputError(
                    f"the model returned a {type(out).__name__}; expected {what} as a numpy array, a torch "
                    "tensor or nested lists"
                )
            try:
                out = np.asarray(out)
            except Exception as e:
                raise OutputError(f"the model returned a {type(out).__name__} that is not an array: {last_line(e)}") from None
        if out.dtype.kind not in "fiu":
            raise OutputError(f"the model returned {what} of dtype {out.dtype}; expected real numbers (float32)")
        if flatten and out.ndim >= 1 and out.shape[0] == n:
            out = out.reshape(n, -1)
        if out.ndim != 2 or out.shape[0] != n or (width is not None and out.shape[1] != width):
            want = f"[{n}, {width}]" if width is not None else f"[{n}, values]"
            extra = f" ({width} labels in the card)" if width is not None and what == "scores" else ""
            raise OutputError(
                f"the model returned {what} of shape {list(out.shape)} for a batch of {n}; expected {want}{extra}"
            )
        return np.ascontiguousarray(out, dtype=np.float32)


def load(kind, source, factory, args, device, embedding, threads, env):
    """Imports the code, calls the factory with `args` (a dict), and wraps the model."""
    module = _import(kind, source, env)
    fn = getattr(module, factory, None)
    if fn is None or not callable(fn):
        names = ", ".join(n for n in dir(module) if not n.startswith("_") and callable(getattr(module, n)))
        raise LoadError(f"{source} has no function `{factory}` (the factory; its functions: {names or 'none'})")
    try:
        obj = fn(**args)
    except Exception as e:
        raise LoadError(f"{source}: {factory}(...) raised {last_line(e)}") from None
    if threads > 0 and "torch" in sys.modules:
        sys.modules["torch"].set_num_threads(threads)
    return Runner(obj, source, device, embedding, threads)
