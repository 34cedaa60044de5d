#!/usr/bin/env python3
"""Per-image top-1 agreement between a shiftbench predictions log and a reference CSV
(bench/reference_onnx.py's output): prints agreement, and both top-1 accuracies.

    python3 bench/agreement.py out/predictions/m__imagenet-samples.jsonl /tmp/ref.csv
"""
import csv
import json
import sys


def main():
    log, ref = sys.argv[1], sys.argv[2]
    ours = {}
    with open(log) as f:
        next(f)
        for line in f:
            r = json.loads(line)
            ours[r["id"]] = r["top"][0] if r["status"] == "ok" else None
    theirs = {}
    with open(ref) as f:
        for row in csv.DictReader(f):
            theirs[row["file"]] = (row["top1_wnid"], row["wnid"])
    common = sorted(set(ours) & set(theirs))
    agree = sum(ours[k] == theirs[k][0] for k in common)
    acc_ours = sum(ours[k] == theirs[k][1] for k in common) / len(common)
    acc_ref = sum(theirs[k][0] == theirs[k][1] for k in common) / len(common)
    diff = [k for k in common if ours[k] != theirs[k][0]]
    print(f"{len(common)} images: top-1 agreement {100 * agree / len(common):.1f}% ({len(diff)} differ); "
          f"top-1 shiftbench {100 * acc_ours:.1f}%, reference {100 * acc_ref:.1f}%")
    for k in diff[:10]:
        print(f"  {k}: shiftbench {ours[k]}, reference {theirs[k][0]}")
    return 0 if len(common) == len(theirs) else 1


if __name__ == "__main__":
    sys.exit(main())
