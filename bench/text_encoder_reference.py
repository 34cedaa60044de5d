#!/usr/bin/env python3
"""Reference caption-to-query similarities, computed as the paper's code computes them.

    text_encoder_reference.py MODEL IN.json OUT.json

MODEL is a sentence-transformers folder (or a Hugging Face CLIP folder). IN.json holds
`{"captions": [...], "queries": [...]}`, caption i paired with query i. For a sentence-transformers
model the embeddings are `SentenceTransformer(MODEL).encode(texts)`; for CLIP they are
`CLIPModel.get_text_features` of the texts tokenized with padding and truncation to 77 tokens.
Both are L2-normalised with sklearn's `normalize`, and the similarity of pair i is the dot product
of the normalised caption and query embeddings (the cosine), as LAIONet's filter computes
`text_to_name_def_wnid_similarity`. Each distinct text is encoded once.

OUT.json gets `{"similarity": [...], "model": MODEL, "seconds": encoding time, "texts": n}`.
Used by tests/text_encoder.rs (the 1e-4 acceptance check) and bench/text_encode.sh.
"""
import json
import sys
import time


def encode_st(folder, texts, batch_size):
    from sentence_transformers import SentenceTransformer

    model = SentenceTransformer(folder, device="cpu")
    t = time.perf_counter()
    emb = model.encode(texts, batch_size=batch_size, convert_to_numpy=True)
    return emb, time.perf_counter() - t


def encode_clip(folder, texts, batch_size):
    import numpy as np
    import torch
    from transformers import AutoTokenizer, CLIPModel

    model = CLIPModel.from_pretrained(folder).eval()
    tok = AutoTokenizer.from_pretrained(folder)
    t = time.perf_counter()
    out = []
    with torch.no_grad():
        for i in range(0, len(texts), batch_size):
            b = tok(texts[i : i + batch_size], padding=True, truncation=True, max_length=77, return_tensors="pt")
            f = model.get_text_features(**b)
            out.append((f.pooler_output if hasattr(f, "pooler_output") else f).numpy())
    return np.concatenate(out), time.perf_counter() - t


def main():
    import os

    import numpy as np
    from sklearn.preprocessing import normalize

    if len(sys.argv) != 4:
        sys.exit(__doc__)
    folder, inp, outp = sys.argv[1:]
    with open(inp) as f:
        data = json.load(f)
    captions, queries = data["captions"], data["queries"]
    if len(captions) != len(queries):
        sys.exit(f"{inp}: {len(captions)} captions but {len(queries)} queries")
    texts = sorted(set(captions) | set(queries))
    index = {t: i for i, t in enumerate(texts)}
    is_st = os.path.isfile(os.path.join(folder, "modules.json"))
    emb, seconds = (encode_st if is_st else encode_clip)(folder, texts, 32)
    emb = normalize(np.asarray(emb, dtype=np.float32))
    c = emb[[index[t] for t in captions]]
    q = emb[[index[t] for t in queries]]
    sim = (c * q).sum(axis=1)
    with open(outp, "w") as f:
        json.dump({"similarity": [float(s) for s in sim], "model": folder, "seconds": seconds, "texts": len(texts)}, f)


if __name__ == "__main__":
    main()
