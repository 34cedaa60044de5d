#!/usr/bin/env python3
"""The LAIONet paper's lemma matching, as its code does it, for checking and timing
`shiftbench laionet build --match-only` against.

From alishiraliGit/eval-on-laion: `utils/laion_utils.py` (`transform_text`, `transform_lemma`:
Python's `string.punctuation` to spaces, one space of padding each side) and
`scripts/createdataset/label_laion.py` (`label`: every lemma tested with `in`, one by one).
A caption whose lemmas name two or more wnids is dropped (the builder's rule); the counts per
wnid are the builder's `class_counts.csv` columns: matched (captions holding a lemma of the
class, multi-class ones too), multi_dropped, candidates.

    paper_match.py LEMMA2WNID.tsv CAPTIONS.jsonl [--out counts.tsv]

CAPTIONS.jsonl: one JSON string (or null) per line. A null caption is what pandas gives for a
missing TEXT: the paper's `label` fails on it (`None.translate`) and labels nothing.
Prints the totals and the captions per second of the matching loop on stderr.
"""

import argparse
import json
import string
import sys
import time

translation = str.maketrans(string.punctuation, ' ' * len(string.punctuation))


def transform_lemma(lemma):
    return ' ' + lemma + ' '


def transform_text(txt):
    return ' ' + txt.translate(translation) + ' '


def label(txt, lem2wnid):
    txt = transform_text(txt)
    lems = []
    ws = set()
    for lem, w in lem2wnid.items():
        if transform_lemma(lem) in txt:
            lems.append(lem)
            ws.add(w)
    return lems, ws


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument('lemma2wnid')
    ap.add_argument('captions')
    ap.add_argument('--out')
    a = ap.parse_args()
    lem2wnid = {}
    with open(a.lemma2wnid, encoding='utf-8') as f:
        next(f)
        for line in f:
            line = line.rstrip('\n')
            if line:
                lem, w = line.split('\t')
                lem2wnid[lem] = w
    with open(a.captions, encoding='utf-8') as f:
        captions = [json.loads(line) for line in f]
    matched, multi, cands = {}, {}, {}
    n_multi = n_one = n_null = 0
    t0 = time.perf_counter()
    for txt in captions:
        try:
            _, ws = label(txt, lem2wnid)
        except AttributeError:  # None.translate: the paper labels nothing
            n_null += 1
            continue
        for w in ws:
            matched[w] = matched.get(w, 0) + 1
        if len(ws) == 1:
            n_one += 1
            w = next(iter(ws))
            cands[w] = cands.get(w, 0) + 1
        elif len(ws) > 1:
            n_multi += 1
            for w in ws:
                multi[w] = multi.get(w, 0) + 1
    dt = time.perf_counter() - t0
    print(f'{len(captions)} captions, {n_null} null, {n_one} one class, {n_multi} multi-class; '
          f'{dt:.2f} s, {len(captions) / max(dt, 1e-9):.0f} captions/s', file=sys.stderr)
    out = open(a.out, 'w') if a.out else sys.stdout
    out.write('wnid\tmatched\tmulti_dropped\tcandidates\n')
    for w in sorted(set(lem2wnid.values())):
        out.write(f'{w}\t{matched.get(w, 0)}\t{multi.get(w, 0)}\t{cands.get(w, 0)}\n')


if __name__ == '__main__':
    main()
