#!/usr/bin/env python3
"""Exports a text encoder for shiftbench's ONNX plugin: `export-text-encoder.py SRC DIR`.

SRC is a sentence-transformers folder (modules.json: Transformer, Pooling, maybe Dense and
Normalize; e.g. all-mpnet-base-v2, the paper's encoder) or a Hugging Face CLIP folder
(`CLIPModel` or `CLIPTextModelWithProjection`; e.g. openai/clip-vit-base-patch32). DIR receives

    model.onnx      the whole text pipeline as one graph: input_ids and attention_mask (int64,
                    [batch, sequence], both axes dynamic) in, `embedding` ([batch, dim], f32) out.
                    Sentence-transformers: the transformer, the pooling of 1_Pooling/config.json
                    (mean over the attention mask, cls, max...), and any Dense/Normalize modules.
                    CLIP: the text transformer, the end-of-text token's state (found as
                    transformers' CLIPTextModel finds it) through text_projection (`text_embeds`).
    tokenizer.json  the model's own tokenizer (the Rust `tokenizers` crate reads it)
    encoder.yaml    what the plugin needs: name, kind, files, max_seq_length (sentence_bert_config.json's,
                    or CLIP's 77), pad id, lowercasing; and where it came from.

shiftbench tokenizes in Rust (truncation to max_seq_length, padding to the longest text of each
batch) and runs the graph; the host L2-normalises every embedding. After exporting, the script
encodes a few texts both ways (the source model in PyTorch, as sentence-transformers' `encode` or
CLIP's `get_text_features` do, against ONNX Runtime on the ids the saved tokenizer.json gives)
and fails if any value differs by more than 1e-4, or if the token ids differ.

Needs torch, transformers, sentence-transformers (for SRC of that kind), onnx and onnxruntime:
the environment `scripts/setup-python-env.sh` makes has them all.
"""
import argparse
import datetime
import json
import os
import shutil
import sys
import tempfile

TOLERANCE = 1e-4

# Texts the export is checked on: short, long, punctuation, non-ASCII, the paper's null caption.
CHECK_TEXTS = [
    "tench which is freshwater dace-like game fish of Europe and western Asia",
    "None",
    "a photo of a golden retriever puppy playing in the snow",
    "Crème brûlée — served in Zürich's finest café!",
    "",
    " ".join(["a very long caption that goes on and on"] * 60),
    "ONE",
    "electric guitar, Fender Stratocaster 1965 sunburst, great condition (#4521)",
]


def fail(msg):
    sys.exit(f"export-text-encoder: {msg}")


def kind_of(src):
    if os.path.isfile(os.path.join(src, "modules.json")):
        return "sentence-transformers"
    cfg = os.path.join(src, "config.json")
    if os.path.isfile(cfg):
        with open(cfg) as f:
            c = json.load(f)
        if c.get("model_type") in ("clip", "clip_text_model") or any("CLIP" in a for a in c.get("architectures", [])):
            return "clip"
    fail(f"{src} is neither a sentence-transformers folder (no modules.json) nor a CLIP model folder (config.json with model_type clip)")


class SentenceTransformerGraph:
    """A sentence-transformers model as one module of (input_ids, attention_mask)."""

    def __init__(self, src):
        import torch
        from sentence_transformers import SentenceTransformer

        # Eager attention: what every exporter traces the same way; the values are sdpa's.
        self.st = SentenceTransformer(src, device="cpu", model_kwargs={"attn_implementation": "eager"})
        self.st.eval()
        st = self.st

        class Wrap(torch.nn.Module):
            def __init__(self):
                super().__init__()
                self.st = st

            def forward(self, input_ids, attention_mask):
                out = self.st({"input_ids": input_ids, "attention_mask": attention_mask, "modality": "text"})
                return out["sentence_embedding"]

        self.module = Wrap().eval()
        self.max_seq_length = int(st.max_seq_length)
        tok = st[0].tokenizer
        self.tokenizer = tok
        self.lowercase = bool(getattr(st[0], "do_lower_case", False))
        self.pooling = self._pooling(src)
        self.normalize = any(type(m).__name__ == "Normalize" for m in st)

    @staticmethod
    def _pooling(src):
        with open(os.path.join(src, "modules.json")) as f:
            modules = json.load(f)
        for m in modules:
            if m["type"].endswith("Pooling"):
                p = os.path.join(src, m["path"], "config.json")
                if os.path.isfile(p):
                    with open(p) as f:
                        c = json.load(f)
                    if "pooling_mode" in c:
                        return c["pooling_mode"]
                    modes = [k[len("pooling_mode_"):] for k, v in c.items() if k.startswith("pooling_mode_") and v]
                    return "+".join(modes) or "mean_tokens"
        return "none"

    def reference(self, texts):
        """What sentence-transformers' encode gives (without normalize_embeddings: the module's own)."""
        return self.st.encode(texts, batch_size=32, convert_to_numpy=True)

    def tokenize(self, texts):
        f = self.st.preprocess(texts)
        return f["input_ids"].numpy(), f["attention_mask"].numpy()


class ClipGraph:
    """A CLIP text tower with its projection, as transformers' get_text_features computes it."""

    def __init__(self, src):
        import torch
        from transformers import AutoTokenizer, CLIPModel, CLIPTextModelWithProjection

        with open(os.path.join(src, "config.json")) as f:
            whole = json.load(f).get("model_type") == "clip"
        if whole:
            # A whole CLIPModel: its text tower and text_projection (loading only the tower class
            # would take the text config's default projection size, not the model's).
            model = CLIPModel.from_pretrained(src, attn_implementation="eager").eval()

            def features(input_ids, attention_mask):
                f = model.get_text_features(input_ids=input_ids, attention_mask=attention_mask)
                return f if isinstance(f, torch.Tensor) else f.pooler_output

            positions = model.config.text_config.max_position_embeddings
        else:
            model = CLIPTextModelWithProjection.from_pretrained(src, attn_implementation="eager").eval()

            def features(input_ids, attention_mask):
                return model(input_ids=input_ids, attention_mask=attention_mask).text_embeds

            positions = model.config.max_position_embeddings
        self.model = model
        self.features = features

        class Wrap(torch.nn.Module):
            def __init__(self):
                super().__init__()
                self.model = model

            def forward(self, input_ids, attention_mask):
                return features(input_ids, attention_mask)

        self.module = Wrap().eval()
        self.tokenizer = AutoTokenizer.from_pretrained(src)
        self.max_seq_length = int(positions)  # 77
        self.lowercase = False  # CLIP's tokenizer.json lowercases itself
        self.pooling = "eos"
        self.normalize = False

    def tokenize(self, texts):
        t = self.tokenizer(texts, padding=True, truncation=True, max_length=self.max_seq_length, return_tensors="np")
        return t["input_ids"].astype("int64"), t["attention_mask"].astype("int64")

    def reference(self, texts):
        import torch

        ids, mask = self.tokenize(texts)
        with torch.no_grad():
            return self.features(torch.from_numpy(ids), torch.from_numpy(mask)).numpy()


def export_onnx(graph, path):
    import torch

    ids, mask = graph.tokenize(["a short one", "and a somewhat longer text to have padding in the batch"])
    args = (torch.from_numpy(ids), torch.from_numpy(mask))
    axes = {"input_ids": {0: "batch", 1: "sequence"}, "attention_mask": {0: "batch", 1: "sequence"}, "embedding": {0: "batch"}}
    with torch.no_grad():
        torch.onnx.export(
            graph.module,
            args,
            path,
            input_names=["input_ids", "attention_mask"],
            output_names=["embedding"],
            dynamic_axes=axes,
            opset_version=17,
            do_constant_folding=True,
            dynamo=False,
        )


def pad_id(tokenizer):
    pid = tokenizer.pad_token_id
    if pid is None:
        pid = tokenizer.eos_token_id
    if pid is None:
        fail("the tokenizer has neither a pad token nor an end-of-text token to pad with")
    return int(pid)


def rust_like_tokenize(tokenizer_json, texts, max_len, pad, lowercase):
    """The ids shiftbench's plugin computes: tokenizer.json, truncation, padding to the longest."""
    import numpy as np
    from tokenizers import Tokenizer

    tok = Tokenizer.from_file(tokenizer_json)
    tok.no_padding()
    tok.enable_truncation(max_len)
    encs = tok.encode_batch([t.lower() if lowercase else t for t in texts])
    n = max(len(e.ids) for e in encs)
    ids = np.full((len(texts), n), pad, dtype=np.int64)
    mask = np.zeros((len(texts), n), dtype=np.int64)
    for i, e in enumerate(encs):
        ids[i, : len(e.ids)] = e.ids
        mask[i, : len(e.ids)] = e.attention_mask
    return ids, mask


def verify(graph, out_dir, cfg):
    import numpy as np
    import onnxruntime as ort

    ref = np.asarray(graph.reference(CHECK_TEXTS), dtype=np.float32)
    ids, mask = rust_like_tokenize(os.path.join(out_dir, "tokenizer.json"), CHECK_TEXTS, cfg["max_seq_length"], cfg["pad_id"], cfg["lowercase"])
    ref_ids, ref_mask = graph.tokenize(CHECK_TEXTS)
    w = min(ids.shape[1], ref_ids.shape[1])
    if ids.shape != ref_ids.shape or (ids * mask != ref_ids[:, :w] * ref_mask[:, :w]).any() or (mask != ref_mask).any():
        fail("the saved tokenizer.json does not give the source model's token ids for the check texts")
    sess = ort.InferenceSession(os.path.join(out_dir, "model.onnx"), providers=["CPUExecutionProvider"])
    got = sess.run(["embedding"], {"input_ids": ids, "attention_mask": mask})[0]
    if got.shape != ref.shape:
        fail(f"the ONNX graph gives embeddings of shape {got.shape}, the source model {ref.shape}")
    diff = float(np.abs(got - ref).max())
    print(f"export-text-encoder: {len(CHECK_TEXTS)} check texts, max abs difference ONNX vs source model: {diff:.2e}")
    if not diff <= TOLERANCE:
        fail(f"the ONNX graph differs from the source model by {diff:.2e} (more than {TOLERANCE})")
    return diff


def yaml_str(s):
    return json.dumps(s, ensure_ascii=False)


def main():
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("src", help="a sentence-transformers folder, or a Hugging Face CLIP model folder")
    ap.add_argument("dir", help="the folder to write (created; must not hold another export)")
    ap.add_argument("--name", help="the encoder's name (default: SRC's folder name)")
    ap.add_argument("--batch-size", type=int, default=32, help="texts per ONNX Runtime run in the plugin (default 32)")
    a = ap.parse_args()
    src = os.path.abspath(a.src)
    if not os.path.isdir(src):
        fail(f"{a.src} is not a folder")
    name = a.name or os.path.basename(src.rstrip("/"))
    kind = kind_of(src)
    out = os.path.abspath(a.dir)
    if os.path.exists(out) and os.listdir(out):
        fail(f"{a.dir} exists and is not empty")
    graph = SentenceTransformerGraph(src) if kind == "sentence-transformers" else ClipGraph(src)

    # Written beside DIR, then moved into place: a failed export leaves nothing half-made.
    parent = os.path.dirname(out) or "."
    os.makedirs(parent, exist_ok=True)
    work = tempfile.mkdtemp(prefix=".export-", dir=parent)
    try:
        tok_src = os.path.join(src, "tokenizer.json")
        if os.path.isfile(tok_src):
            shutil.copyfile(tok_src, os.path.join(work, "tokenizer.json"))
        else:
            graph.tokenizer.backend_tokenizer.save(os.path.join(work, "tokenizer.json"))
        export_onnx(graph, os.path.join(work, "model.onnx"))
        import onnx

        dim = None
        m = onnx.load(os.path.join(work, "model.onnx"), load_external_data=False)
        shape = m.graph.output[0].type.tensor_type.shape.dim
        if len(shape) == 2 and shape[1].dim_value > 0:
            dim = shape[1].dim_value
        cfg = {
            "max_seq_length": graph.max_seq_length,
            "pad_id": pad_id(graph.tokenizer),
            "lowercase": graph.lowercase,
        }
        diff = verify(graph, work, cfg)
        if dim is None:
            dim = int(graph.reference(["x"]).shape[1])
        import torch
        import transformers

        lines = [
            "# A text encoder for shiftbench (--encoder DIR), written by scripts/export-text-encoder.py.",
            "plugin: onnx",
            f"name: {yaml_str(name)}",
            f"kind: {kind}",
            "model: model.onnx",
            "tokenizer: tokenizer.json",
            f"max_seq_length: {cfg['max_seq_length']}",
            f"pad_id: {cfg['pad_id']}",
            f"lowercase: {'true' if cfg['lowercase'] else 'false'}",
            f"dim: {dim}",
            f"batch_size: {a.batch_size}",
            "# In the graph already (the plugin only tokenizes and runs it):",
            f"pooling: {yaml_str(graph.pooling)}",
            f"normalize: {'true' if graph.normalize else 'false'}",
            f"source: {yaml_str(src)}",
            f"exported: {yaml_str(datetime.datetime.now(datetime.timezone.utc).strftime('%Y-%m-%dT%H:%M:%SZ'))}",
            f"exported_with: {yaml_str(f'torch {torch.__version__}, transformers {transformers.__version__}')}",
            f"check_max_abs_diff: {diff:.3e}",
        ]
        with open(os.path.join(work, "encoder.yaml"), "w") as f:
            f.write("\n".join(lines) + "\n")
        # mkdtemp's folder is private (0700); an export is shared like any model folder.
        os.chmod(work, 0o755)
        if os.path.isdir(out):
            os.rmdir(out)
        os.replace(work, out)
    except BaseException:
        shutil.rmtree(work, ignore_errors=True)
        raise
    print(f"export-text-encoder: wrote {out} ({kind}, {dim} values, max_seq_length {cfg['max_seq_length']}); use --encoder {out}")


if __name__ == "__main__":
    main()
