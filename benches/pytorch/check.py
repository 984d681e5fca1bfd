#!/usr/bin/env python3
"""Proof that `model.py` is the same function as our MNEMOSYNE.

Reads what `cargo run --release -p mnnn-tools --example torch_export -- <preset> <file>`
wrote (our model in f64 with a fixed seed, a batch of mqar-basic sequences, our logits from
the batched forward and from the streaming decode, our loss, every parameter's gradient and
loads the weights into the PyTorch model in float64 and compares. Every error is
`max|torch - ours| / max|ours|` over one tensor. Exits 1 if any compared tensor is off by
more than --tol.
"""

import argparse
import json
import os
import re
import sys

import numpy as np
import torch

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
from model import PRESETS, Mnemosyne  # noqa: E402
from decode import Stream  # noqa: E402


def rel(a, b):
    a, b = np.asarray(a, dtype=np.float64), np.asarray(b, dtype=np.float64)
    scale = np.abs(b).max()
    diff = np.abs(a - b).max()
    return diff / scale if scale > 0 else diff


def check_config(cfg, ron):
    """The preset's RON params must be the configuration the torch model runs."""
    want = {"layers": cfg.layers, "heads": cfg.heads, "head_dim": cfg.head_dim, "memory": cfg.memory,
            "chunk": cfg.chunk, "lr": cfg.lr, "momentum": cfg.momentum, "forget": cfg.forget,
            "gate": cfg.gate, "sidecar": cfg.sidecar, "ffn": cfg.ffn}
    for key, value in want.items():
        m = re.search(rf"\b{key}\s*:\s*\"?([\w.]+)\"?", ron)
        got = m.group(1) if m else None
        ok = got is not None and (str(value).lower() == got.lower() or
                                  (isinstance(value, float) and float(got) == value))
        if not ok:
            sys.exit(f"preset params {key}: ours {got}, torch {value}")
    if "update" in ron and "last_layer" in ron:
        sys.exit("update: last_layer is not in the torch model")


def main():
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("export", help="JSON written by the torch_export example")
    ap.add_argument("--tol", type=float, default=1e-10)
    ap.add_argument("--stream-seqs", type=int, default=2, help="sequences to decode token by token")
    args = ap.parse_args()
    torch.set_num_threads(1)
    with open(args.export) as f:
        doc = json.load(f)
    cfg = PRESETS[doc["preset"]]
    check_config(cfg, doc["params_ron"])
    params = {p["name"]: np.asarray(p["data"]).reshape(p["shape"]) for p in doc["params"]}
    vocab, embed = params["embed.table"].shape
    classes = params["head.w"].shape[0]
    model = Mnemosyne(cfg, vocab, embed, classes, dtype=torch.float64)
    missing = set(params) ^ set(model.names)
    if missing:
        sys.exit(f"parameter names differ: {sorted(missing)}")
    model.load(params)
    ours_count = doc["param_count"]
    torch_count = sum(p.numel() for p in model.parameters())
    print(f"{doc['preset']}: parameters ours {ours_count}, torch {torch_count}")
    failures = []

    def report(name, err, required=True):
        flag = "" if err <= args.tol else ("  FAIL" if required else "  (not required)")
        print(f"  {name:<28} max rel error {err:.3e}{flag}")
        if required and not err <= args.tol:
            failures.append(name)

    if ours_count != torch_count:
        failures.append("parameter count")
    tokens = torch.tensor(doc["tokens"], dtype=torch.int64)
    targets = torch.tensor(doc["targets"], dtype=torch.int64)
    mask = torch.tensor(doc["mask"], dtype=torch.bool)
    B, T = tokens.shape
    logits = model(tokens)
    ours = np.asarray(doc["logits"]).reshape(B, T, classes)
    report("logits (batched forward)", rel(logits.detach().numpy(), ours))
    loss = model.loss(tokens, targets, mask)
    report("loss", rel(loss.item(), doc["loss"]))
    loss.backward()
    grads = {g["name"]: np.asarray(g["data"]).reshape(g["shape"]) for g in doc["grads"]}
    worst = 0.0
    for name in model.names:
        got = model.p(name).grad.numpy()
        err = rel(got, grads[name])
        worst = max(worst, err)
        report(f"grad {name}", err)
    print(f"  worst parameter gradient: {worst:.3e}")
    n = min(args.stream_seqs, B)
    stream_ours = np.asarray(doc["stream_logits"]).reshape(B, T, classes)
    for b in range(n):
        s = Stream(model)
        out = torch.stack([s.step(int(t)) for t in tokens[b]]).numpy()
        report(f"decode seq {b} vs our decode", rel(out, stream_ours[b]))
        report(f"decode seq {b} vs torch batch", rel(out, logits[b].detach().numpy()))
    if failures:
        print(f"FAILED: {', '.join(failures)}")
        sys.exit(1)
    print(f"OK: torch computes our function within {args.tol:g}")


if __name__ == "__main__":
    main()
