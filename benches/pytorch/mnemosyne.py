#!/usr/bin/env python3
"""PyTorch baseline for MNEMOSYNE on `mqar-basic`: the whole model (`model.py`), trained with
AdamW through autograd, timed three ways.

    python3 benches/pytorch/mnemosyne.py --preset mnemosyne-delta --mode all --threads 2

Modes:
  train    tokens/s of forward + backward + gradient clipping + AdamW step, batch --batch
  forward  tokens/s of a no-grad forward, batch --batch
  decode   tokens/s of batch-1 streaming, one token at a time (`decode.py`)
  all      the three

Each measurement prints one JSON line (`"impl": "pytorch"`); `--threads N` sets
torch.set_num_threads and torch.set_num_interop_threads. Data: MQAR sequences as the zoo's
generator draws them (vocabulary 256, length 64, 4 pairs, each key queried once).
"""

import argparse
import json
import os
import sys
import time

import numpy as np
import torch

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
from model import PRESETS, Mnemosyne  # noqa: E402
from decode import Stream  # noqa: E402


def mqar_batch(rng, batch, vocab=256, pairs=4, length=64, queries=4):
    """Tokens, targets, mask (B, T): pairs first, then filler with each key queried once."""
    half = vocab // 2
    tokens = np.zeros((batch, length), dtype=np.int64)
    targets = np.zeros((batch, length), dtype=np.int64)
    mask = np.zeros((batch, length), dtype=bool)
    for b in range(batch):
        keys = 1 + rng.choice(half - 1, pairs, replace=False)
        values = rng.integers(half, vocab, pairs)
        tokens[b, 0:2 * pairs:2], tokens[b, 1:2 * pairs:2] = keys, values
        slots = 2 * pairs + rng.choice(length - 2 * pairs, queries, replace=False)
        for i, p in enumerate(slots):
            tokens[b, p], targets[b, p], mask[b, p] = keys[i % pairs], values[i % pairs], True
    return torch.from_numpy(tokens), torch.from_numpy(targets), torch.from_numpy(mask)


def timed(fn, min_seconds, min_reps):
    """Seconds per call of `fn` after one warm-up call, over at least `min_reps` calls and
    `min_seconds`."""
    fn()
    start, n = time.perf_counter(), 0
    while n < min_reps or time.perf_counter() - start < min_seconds:
        fn()
        n += 1
    return (time.perf_counter() - start) / n, n


def main():
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--preset", choices=sorted(PRESETS), default="mnemosyne")
    ap.add_argument("--mode", choices=["train", "forward", "decode", "all"], default="all")
    ap.add_argument("--threads", type=int, default=2)
    ap.add_argument("--batch", type=int, default=32)
    ap.add_argument("--len", type=int, default=64)
    ap.add_argument("--lr", type=float, default=3e-3)
    ap.add_argument("--seconds", type=float, default=5.0, help="least time per measurement")
    ap.add_argument("--decode-tokens", type=int, default=512)
    ap.add_argument("--seed", type=int, default=0)
    args = ap.parse_args()
    torch.set_num_threads(args.threads)
    torch.set_num_interop_threads(args.threads)
    torch.manual_seed(args.seed)
    rng = np.random.default_rng(args.seed)
    cfg = PRESETS[args.preset]
    model = Mnemosyne(cfg, dtype=torch.float32, seed=args.seed)
    params = sum(p.numel() for p in model.parameters())
    base = {"impl": "pytorch", "preset": args.preset, "task": "mqar-basic", "threads": args.threads,
            "params": params, "torch": torch.__version__}
    modes = ["train", "forward", "decode"] if args.mode == "all" else [args.mode]

    def emit(mode, batch, tps, reps, loss=None):
        line = dict(base, mode=mode, batch=batch, len=args.len, tokens_per_second=round(tps, 1), reps=reps)
        if loss is not None:
            line["loss"] = round(loss, 4)
        print(json.dumps(line), flush=True)

    if "train" in modes:
        opt = torch.optim.AdamW(model.parameters(), lr=args.lr)
        batches = [mqar_batch(rng, args.batch, length=args.len) for _ in range(8)]
        state = {"i": 0, "loss": 0.0}

        def step():
            x, y, m = batches[state["i"] % len(batches)]
            state["i"] += 1
            opt.zero_grad(set_to_none=True)
            loss = model.loss(x, y, m)
            loss.backward()
            torch.nn.utils.clip_grad_norm_(model.parameters(), 1.0)  # ours clips at 1.0 too
            opt.step()
            state["loss"] = loss.item()

        sec, reps = timed(step, args.seconds, 3)
        emit("train", args.batch, args.batch * args.len / sec, reps, state["loss"])
    if "forward" in modes:
        x, _, _ = mqar_batch(rng, args.batch, length=args.len)

        def fwd():
            with torch.inference_mode():
                model(x)

        sec, reps = timed(fwd, args.seconds, 3)
        emit("forward", args.batch, args.batch * args.len / sec, reps)
    if "decode" in modes:
        n = args.decode_tokens
        stream_tokens = torch.cat([mqar_batch(rng, 1, length=args.len)[0][0]
                                   for _ in range((n + args.len - 1) // args.len)])[:n].tolist()

        def dec():
            s = Stream(model)
            with torch.inference_mode():
                for tok in stream_tokens:
                    s.step(tok)

        sec, reps = timed(dec, args.seconds, 1)
        emit("decode", 1, n / sec, reps)


if __name__ == "__main__":
    main()
