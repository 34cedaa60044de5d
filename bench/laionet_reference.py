#!/usr/bin/env python3
"""The LAIONet paper's whole pipeline (Section 2), as its code runs it, on a caption table: the
reference that tests/laionet_reference.rs compares `shiftbench laionet build` against, and the
baseline bench/laionet_build.sh times it against.

    laionet_reference.py MODEL LEMMA2WNID.tsv QUERIES.tsv ROWS.jsonl OUT.json
        [--threshold 0.58] [--alias OLD=NEW ...] [--per-row-queries] [--batch 512]

Transcribed from alishiraliGit/eval-on-laion:
1. Matching, `scripts/createdataset/label_laion.py` with `utils/laion_utils.py`: every character
   of Python's `string.punctuation` becomes a space, the caption gets one space each side, and each
   lemma of the dictionary is tested in turn, case-sensitively, as `" lemma " in caption`; a row's
   wnids are the set of those of its lemmas. A null caption fails (`None.translate`) and is
   labelled nothing.
2. Dropping, `scripts/calcsimilarity/calc_and_store_text_to_query_similarities.py`
   (`utils.drop_keys_with_multiple_values` on the inverse map): a row naming two or more wnids is
   dropped; the others are the candidates, each given its wnid's name_def query.
3. Encoding, the same script with `core/foundationmodels/sentencetransformer.py`: batches of
   `--batch` rows; each batch's captions and, apart, its rows' queries are encoded with
   `SentenceTransformer(MODEL).encode(texts)`; the similarity is `utils.cosine_similarity`:
   sklearn's `normalize` (L2, by row) of both and the row-wise sum of their product.
   `--per-row-queries` encodes every row's query as the paper does; without it each distinct
   query is encoded once (the same embeddings up to float rounding, at a fraction of the time:
   the test uses that, the benchmark does not).
4. Selecting, `scripts/createdataset/sample_laion_from_most_similars.py --remove_nsfw`: a row
   whose NSFW is not exactly `UNLIKELY` gets a NaN similarity; a row is kept when its similarity
   is strictly greater than the threshold (0.58 for all-mpnet-base-v2).

LEMMA2WNID.tsv: `lemma<TAB>wnid` with a header (the paper's `lemma2wnid(unique_in_ilsvrc_ignored_
empty_wnids).pkl` as a table). `--alias OLD=NEW` renames a wnid of the dictionary (the builder
writes the paper's Siberian husky n02112837 as ImageNet-1k's n02110185, whose query the query
table has). QUERIES.tsv: columns wnid and query, with a header. ROWS.jsonl: one JSON object per
row with SAMPLE_ID, TEXT (a string or null) and NSFW (a string or null).

OUT.json: `{"counts": {wnid: [matched, multi_dropped, candidates]}, "candidates": [[SAMPLE_ID,
wnid, similarity], ...] (row order), "selected": [SAMPLE_ID, ...] (sorted), "rows", "null",
"multi", "seconds": {"match", "load", "encode", "total"}}`.
"""

import argparse
import json
import string
import sys
import time

T0 = time.perf_counter()

PUNCTUATION = str.maketrans(string.punctuation, ' ' * len(string.punctuation))
SAFE_TAG = 'UNLIKELY'


def transform_text(txt):
    return ' ' + txt.translate(PUNCTUATION) + ' '


def transform_lemma(lemma):
    return ' ' + lemma + ' '


def label(txt, lem2wnid):
    txt = transform_text(txt)
    ws = set()
    for lem, w in lem2wnid.items():
        if transform_lemma(lem) in txt:
            ws.add(w)
    return ws


def read_tsv(path, key, value):
    with open(path, encoding='utf-8') as f:
        header = f.readline().rstrip('\n').split('\t')
        k, v = header.index(key), header.index(value)
        out = {}
        for line in f:
            line = line.rstrip('\n')
            if line:
                c = line.split('\t')
                out[c[k]] = c[v]
        return out


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument('model')
    ap.add_argument('lemma2wnid')
    ap.add_argument('queries')
    ap.add_argument('rows')
    ap.add_argument('out')
    ap.add_argument('--threshold', type=float, default=0.58)
    ap.add_argument('--alias', action='append', default=[])
    ap.add_argument('--per-row-queries', action='store_true')
    ap.add_argument('--batch', type=int, default=512)
    a = ap.parse_args()

    alias = dict(x.split('=', 1) for x in a.alias)
    lem2wnid = {lem: alias.get(w, w) for lem, w in read_tsv(a.lemma2wnid, 'lemma', 'wnid').items()}
    wnid2query = read_tsv(a.queries, 'wnid', 'query')
    with open(a.rows, encoding='utf-8') as f:
        rows = [json.loads(line) for line in f]

    # 1. The matching loop, and the wnid -> rows map it builds.
    t = time.perf_counter()
    wnid2indices = {}
    n_null = 0
    for i, row in enumerate(rows):
        try:
            ws = label(row['TEXT'], lem2wnid)
        except AttributeError:  # None.translate: labelled nothing
            n_null += 1
            continue
        for w in ws:
            wnid2indices.setdefault(w, []).append(i)
    # 2. The inverse map; rows of two or more wnids dropped.
    index2wnids = {}
    for w, indices in wnid2indices.items():
        for i in indices:
            index2wnids.setdefault(i, []).append(w)
    multi = [i for i, ws in index2wnids.items() if len(ws) > 1]
    for i in multi:
        index2wnids.pop(i)
    cand = sorted(index2wnids)
    match_seconds = time.perf_counter() - t

    # 3. Encoding, batch by batch, and the cosine.
    t = time.perf_counter()
    import numpy as np
    import torch
    from sentence_transformers import SentenceTransformer
    from sklearn.preprocessing import normalize

    model = SentenceTransformer(a.model, device='cpu')
    load_seconds = time.perf_counter() - t
    t = time.perf_counter()
    queries = [wnid2query[index2wnids[i][0]] for i in cand]
    sims = np.full(len(cand), np.nan)
    with torch.no_grad():
        if not a.per_row_queries:
            distinct = sorted(set(queries))
            qe = model.encode(distinct)
            q_of = {q: k for k, q in enumerate(distinct)}
        for s in range(0, len(cand), a.batch):
            texts = [rows[i]['TEXT'] for i in cand[s:s + a.batch]]
            te = model.encode(texts)
            if a.per_row_queries:
                qb = model.encode(queries[s:s + a.batch])
            else:
                qb = qe[[q_of[q] for q in queries[s:s + a.batch]]]
            sims[s:s + len(texts)] = np.sum(normalize(te, axis=1, norm='l2') * normalize(qb, axis=1, norm='l2'),
                                            axis=1).tolist()
    encode_seconds = time.perf_counter() - t

    # 4. NSFW and the threshold, as the sampling script does them.
    kept = sims.copy()
    for k, i in enumerate(cand):
        if rows[i]['NSFW'] != SAFE_TAG:
            kept[k] = np.nan
    selected = sorted(rows[cand[k]]['SAMPLE_ID'] for k in np.nonzero(kept > a.threshold)[0])

    # Per wnid: rows holding one of its lemmas, those of them dropped for naming several, the rest.
    counts = {}
    multi_set = set(multi)
    for w, indices in wnid2indices.items():
        n_multi = sum(1 for i in indices if i in multi_set)
        counts[w] = [len(indices), n_multi, len(indices) - n_multi]
    out = {
        'counts': counts,
        'candidates': [[rows[i]['SAMPLE_ID'], index2wnids[i][0], float(s)] for i, s in zip(cand, sims)],
        'selected': selected,
        'rows': len(rows),
        'null': n_null,
        'multi': len(multi),
        'seconds': {'match': match_seconds, 'load': load_seconds, 'encode': encode_seconds,
                    'total': time.perf_counter() - T0},
    }
    with open(a.out, 'w') as f:
        json.dump(out, f)
    print(f'{len(rows)} rows, {n_null} null captions, {len(cand)} candidates, {len(multi)} naming several '
          f'classes, {len(selected)} selected; matching {match_seconds:.1f} s, loading {load_seconds:.1f} s, '
          f'encoding {encode_seconds:.1f} s', file=sys.stderr)


if __name__ == '__main__':
    main()
