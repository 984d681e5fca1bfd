#!/usr/bin/env python3
"""PyTorch CPU reference benchmark for a chunked test-time-training linear memory.

What it measures
----------------
Forward throughput (tokens/s, tokens = batch x sequence length) of a single-head
linear memory f(k) = k W with head dim d (default 64), processed in chunks of b
rows (default 64), float32, torch.set_num_threads(2) (override with --threads),
under torch.no_grad().
Two forms are timed:

  (a) "dual" -- mini-batch TTT-Linear dual form (no LayerNorm, no bias), loss
      1/2 ||k W - v||^2, every gradient in a chunk taken at the chunk-start
      weights W0:
          E      = K W0 - V
          O      = Q W0 - (tril(Q K^T) * theta[None, :]) @ E
          W_next = W0 - K^T (theta[:, None] * E)

  (b) "delta" -- exact delta rule, chunked with the WY representation
      (beta = theta):
          A  = I + tril(diag(beta) K K^T, -1)      (strictly lower part)
          T  = A^{-1} diag(beta)                   (torch.linalg.solve_triangular)
          W_ = T K ,  U = T V
          U' = U - W_ S
          O  = Q S + tril(Q K^T) @ U'              (diagonal included)
          S_next = S + K^T U'

Chunks are walked sequentially in a Python loop with the state carried; each
chunk's maths is batched over the batch dimension with torch.bmm/matmul on
(B, b, d) tensors. Inputs are random: Q and K rows are l2-normalised and theta
is sigmoid(N(0,1)) per token; input generation and normalisation are not timed.
One untimed warm-up pass precedes the timed repeats; the best and the median of
`--repeats` passes are reported.

Before timing, both forms are checked in float64 on small cases against naive
per-token loops:
  (a) W_t = W0 - sum_{s<=t} theta_s k_s^T (k_s W0 - v_s), o_t = q_t W_t,
      W0 reset to the running weights at every chunk boundary;
  (b) S_t = S_{t-1} - beta_t k_t^T (k_t S_{t-1} - v_t), o_t = q_t S_t.
The max abs errors are printed; the script exits non-zero if any is > 1e-9.

How to run
----------
    python3 plugins/mnemosyne/benches/pytorch_chunked.py --batch 1
    python3 plugins/mnemosyne/benches/pytorch_chunked.py --batch 8 --json

Flags: --batch (1), --tokens (sequence length, 16384), --d (64), --chunk (64),
--repeats (5), --json (also print one JSON line with the results),
--threads (2; torch.set_num_threads value, 1 is useful for comparison).
"""

import argparse
import json
import platform
import statistics
import sys
import time

import torch

TOLERANCE = 1e-9


# ---------------------------------------------------------------------------
# Chunked forms (batched over B; inputs (B, L, d), theta (B, L))
# ---------------------------------------------------------------------------

def dual_form(q, k, v, theta, chunk, w0=None):
    """Mini-batch TTT-Linear dual form. Returns (outputs (B, L, d), final W (B, d, d))."""
    bsz, length, d = q.shape
    assert length % chunk == 0, "sequence length must be a multiple of the chunk size"
    w = torch.zeros(bsz, d, d, dtype=q.dtype) if w0 is None else w0.clone()
    out = torch.empty_like(v)
    for start in range(0, length, chunk):
        end = start + chunk
        qc, kc, vc = q[:, start:end], k[:, start:end], v[:, start:end]
        th = theta[:, start:end]                                   # (B, b)
        err = torch.bmm(kc, w) - vc                                # E = K W0 - V
        attn = torch.tril(torch.bmm(qc, kc.transpose(1, 2)))       # tril(Q K^T)
        attn = attn * th[:, None, :]                               # scale column s by theta_s
        out[:, start:end] = torch.bmm(qc, w) - torch.bmm(attn, err)
        w = w - torch.bmm(kc.transpose(1, 2), th[:, :, None] * err)
    return out, w


def delta_form(q, k, v, beta, chunk, s0=None):
    """Exact delta rule, chunked WY form. Returns (outputs (B, L, d), final S (B, d, d))."""
    bsz, length, d = q.shape
    assert length % chunk == 0, "sequence length must be a multiple of the chunk size"
    s = torch.zeros(bsz, d, d, dtype=q.dtype) if s0 is None else s0.clone()
    out = torch.empty_like(v)
    eye = torch.eye(chunk, dtype=q.dtype)
    for start in range(0, length, chunk):
        end = start + chunk
        qc, kc, vc = q[:, start:end], k[:, start:end], v[:, start:end]
        bc = beta[:, start:end]                                    # (B, b)
        kkt = torch.bmm(kc, kc.transpose(1, 2))                    # K K^T
        a = eye + torch.tril(bc[:, :, None] * kkt, diagonal=-1)    # I + tril(diag(beta) K K^T, -1)
        t = torch.linalg.solve_triangular(
            a, torch.diag_embed(bc), upper=False, unitriangular=True
        )                                                          # T = A^{-1} diag(beta)
        w_ = torch.bmm(t, kc)                                      # W_ = T K
        u = torch.bmm(t, vc)                                       # U  = T V
        u_adj = u - torch.bmm(w_, s)                               # U' = U - W_ S
        attn = torch.tril(torch.bmm(qc, kc.transpose(1, 2)))       # tril(Q K^T), diag incl.
        out[:, start:end] = torch.bmm(qc, s) + torch.bmm(attn, u_adj)
        s = s + torch.bmm(kc.transpose(1, 2), u_adj)               # S_next = S + K^T U'
    return out, s


# ---------------------------------------------------------------------------
# Naive per-token references (float64)
# ---------------------------------------------------------------------------

def dual_reference(q, k, v, theta, chunk, w0):
    bsz, length, d = q.shape
    out = torch.empty_like(v)
    w_final = torch.empty_like(w0)
    for bi in range(bsz):
        w_start = w0[bi].clone()            # weights at the current chunk start
        w_run = w_start.clone()
        for t in range(length):
            if t % chunk == 0:
                w_start = w_run.clone()
            kt, vt, qt = k[bi, t:t + 1], v[bi, t:t + 1], q[bi, t:t + 1]   # (1, d)
            grad = kt.T @ (kt @ w_start - vt)                             # gradient at W0
            w_run = w_run - theta[bi, t] * grad
            out[bi, t] = (qt @ w_run)[0]
        w_final[bi] = w_run
    return out, w_final


def delta_reference(q, k, v, beta, s0):
    bsz, length, d = q.shape
    out = torch.empty_like(v)
    s_final = torch.empty_like(s0)
    for bi in range(bsz):
        s = s0[bi].clone()
        for t in range(length):
            kt, vt, qt = k[bi, t:t + 1], v[bi, t:t + 1], q[bi, t:t + 1]
            s = s - beta[bi, t] * (kt.T @ (kt @ s - vt))
            out[bi, t] = (qt @ s)[0]
        s_final[bi] = s
    return out, s_final


# ---------------------------------------------------------------------------
# Inputs, verification, timing
# ---------------------------------------------------------------------------

def make_inputs(batch, length, d, dtype, seed):
    gen = torch.Generator().manual_seed(seed)
    q = torch.randn(batch, length, d, generator=gen, dtype=dtype)
    k = torch.randn(batch, length, d, generator=gen, dtype=dtype)
    v = torch.randn(batch, length, d, generator=gen, dtype=dtype)
    theta = torch.sigmoid(torch.randn(batch, length, generator=gen, dtype=dtype))
    q = q / q.norm(dim=-1, keepdim=True)
    k = k / k.norm(dim=-1, keepdim=True)
    return q, k, v, theta


def verify(d, chunk):
    """Check both chunked forms against token loops in float64. Returns the worst error."""
    cases = [
        # (batch, chunks, d, chunk, random initial state?)
        (2, 4, 8, 4, True),
        (2, 3, d, chunk, True),
    ]
    worst = 0.0
    for idx, (bsz, nchunks, dd, bb, rand_state) in enumerate(cases):
        length = nchunks * bb
        q, k, v, theta = make_inputs(bsz, length, dd, torch.float64, seed=100 + idx)
        gen = torch.Generator().manual_seed(200 + idx)
        state0 = (0.1 * torch.randn(bsz, dd, dd, generator=gen, dtype=torch.float64)
                  if rand_state else torch.zeros(bsz, dd, dd, dtype=torch.float64))

        o_c, w_c = dual_form(q, k, v, theta, bb, state0)
        o_r, w_r = dual_reference(q, k, v, theta, bb, state0)
        err_a = max((o_c - o_r).abs().max().item(), (w_c - w_r).abs().max().item())

        o_c, s_c = delta_form(q, k, v, theta, bb, state0)
        o_r, s_r = delta_reference(q, k, v, theta, state0)
        err_b = max((o_c - o_r).abs().max().item(), (s_c - s_r).abs().max().item())

        print(f"verify case {idx} (B={bsz}, L={length}, d={dd}, b={bb}, float64): "
              f"dual max abs err = {err_a:.3e}, delta max abs err = {err_b:.3e}")
        for name, err in (("dual", err_a), ("delta", err_b)):
            if not (err <= TOLERANCE):
                print(f"VERIFICATION FAILED: {name} form error {err:.3e} > {TOLERANCE:g}",
                      file=sys.stderr)
                sys.exit(1)
        worst = max(worst, err_a, err_b)
    return worst


def time_form(fn, inputs, chunk, repeats):
    fn(*inputs, chunk)                       # warm-up, untimed
    times = []
    for _ in range(repeats):
        t0 = time.perf_counter()
        fn(*inputs, chunk)
        times.append(time.perf_counter() - t0)
    return times


def main():
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--batch", type=int, default=1)
    parser.add_argument("--tokens", type=int, default=16384, help="sequence length")
    parser.add_argument("--d", type=int, default=64, help="head dim")
    parser.add_argument("--chunk", type=int, default=64, help="chunk size b")
    parser.add_argument("--repeats", type=int, default=5)
    parser.add_argument("--json", action="store_true", help="also print a JSON line")
    parser.add_argument("--threads", type=int, default=2,
                        help="torch.set_num_threads value (default 2, the machine's cores)")
    args = parser.parse_args()
    if args.tokens % args.chunk != 0:
        parser.error("--tokens must be a multiple of --chunk")
    if args.repeats < 1:
        parser.error("--repeats must be >= 1")

    torch.set_num_threads(args.threads)
    with torch.no_grad():
        worst = verify(args.d, args.chunk)

        inputs = make_inputs(args.batch, args.tokens, args.d, torch.float32, seed=0)
        n_tokens = args.batch * args.tokens
        results = {}
        for name, fn in (("dual", dual_form), ("delta", delta_form)):
            times = time_form(fn, inputs, args.chunk, args.repeats)
            best, med = min(times), statistics.median(times)
            results[name] = {
                "best_s": best,
                "median_s": med,
                "best_tok_s": n_tokens / best,
                "median_tok_s": n_tokens / med,
            }

    print(f"torch {torch.__version__}, threads={torch.get_num_threads()}, "
          f"batch={args.batch}, tokens={args.tokens}, d={args.d}, chunk={args.chunk}, "
          f"repeats={args.repeats}, float32")
    for name, r in results.items():
        print(f"{name:>5}: best {r['best_tok_s']:>12,.0f} tok/s ({r['best_s'] * 1e3:.1f} ms)  "
              f"median {r['median_tok_s']:>12,.0f} tok/s ({r['median_s'] * 1e3:.1f} ms)")
    if args.json:
        print(json.dumps({
            "bench": "pytorch_chunked",
            "torch": torch.__version__,
            "python": platform.python_version(),
            "threads": torch.get_num_threads(),
            "batch": args.batch,
            "tokens": args.tokens,
            "d": args.d,
            "chunk": args.chunk,
            "repeats": args.repeats,
            "dtype": "float32",
            "verify_max_abs_err": worst,
            "results": results,
        }))


if __name__ == "__main__":
    main()
