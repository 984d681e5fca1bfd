"""MNEMOSYNE in plain PyTorch: the whole token model, trained through autograd.

The same function as mnnn's `mnemosyne` entry wrapped as a token model (embedding table ->
input affine -> blocks -> output RMSNorm and affine -> the wrapper's affine head), with
parameters named and shaped exactly as ours (`plugins/mnemosyne/src/shapes.rs`, then the
wrapper's `head.w`, `head.b`, `embed.table`), so `check.py` can load our weights directly.

Block: pre-RMSNorm -> per-head memory read (+ gated sidecar read) -> output projection ->
residual -> pre-RMSNorm -> GELU FFN -> residual. The memory, per head:

* `chunk: 1`, linear memory, no momentum, no gate (the `mnemosyne-delta` preset): the exact
  delta rule with forget gate (Gated DeltaNet's recurrence), computed per block of tokens by
  the triangular-solve (WY) form: `R = (I + A)^-1 (V - diag(p) K W0)`, reads `diag(b) Q W0 + P R`.
* otherwise (the default `mnemosyne` preset: MLP memory, chunk 16, momentum, forget, surprise
  gate): the mini-batch dual form -- every inner gradient in a chunk taken at the chunk's
  starting weights, reads and end-of-chunk weights as matrix products over the chunk.

The sidecar (K most surprising (key, value) pairs, attended with a learned null slot) picks
its entries from the detached surprise scores (a selection carries no gradient, as ours).
"""

import math
from dataclasses import dataclass

import numpy as np
import torch

NORM_EPS = 1e-6  # RMSNorm floor
L2_EPS = 1e-6  # query/key normalisation floor
LN_EPS = 1e-5  # memory LayerNorm variance floor
SURPRISE_EPS = 1e-2  # per-feature floor of the target's squared norm in the surprise
GELU_C = 0.7978845608028654
GELU_A = 0.044715
EXACT_BLOCK = 32  # our training windows cut the exact delta rule in blocks of 32


@dataclass
class Config:
    """The `params` of a preset (zoo/presets/*.ron)."""

    layers: int = 2
    heads: int = 2
    head_dim: int = 32
    memory: str = "mlp"
    chunk: int = 16
    lr: float = 1.0
    momentum: bool = True
    forget: bool = True
    gate: str = "surprise"
    sidecar: int = 8
    ffn: int = 2

    def exact(self):
        """Whether the memory is the exact delta rule (sequential, linear, ungated)."""
        return self.chunk == 1 and self.memory == "linear" and not self.momentum and self.gate == "none"


PRESETS = {
    "mnemosyne": Config(),
    "mnemosyne-delta": Config(memory="linear", chunk=1, momentum=False, gate="none"),
}


def softplus(x):
    # torch's softplus switches to the identity above 20; ours is exact everywhere.
    return torch.clamp(x, min=0) + torch.log1p(torch.exp(-x.abs()))


def gelu(x):
    return 0.5 * x * (1.0 + torch.tanh(GELU_C * (x + GELU_A * x * x * x)))


def gelu_prime(x):
    th = torch.tanh(GELU_C * (x + GELU_A * x * x * x))
    return 0.5 * (1.0 + th) + 0.5 * x * (1.0 - th * th) * GELU_C * (1.0 + 3.0 * GELU_A * x * x)


def rms_norm(x, g):
    return x * torch.rsqrt((x * x).mean(-1, keepdim=True) + NORM_EPS) * g


def l2_normalize(x):
    return x * torch.rsqrt((x * x).sum(-1, keepdim=True) + L2_EPS)


def ln_stats(z):
    zc = z - z.mean(-1, keepdim=True)
    rstd = torch.rsqrt((zc * zc).mean(-1, keepdim=True) + LN_EPS)
    return zc * rstd, rstd


def ln_fused_grad(z, gamma, beta, tau):
    """For `l = 1/2 |LN(z) - tau|^2`: `(dl/dz, LN(z) - tau)`."""
    n = z.shape[-1]
    xh, rstd = ln_stats(z)
    e = xh * gamma + beta - tau
    gh = e * gamma
    s1 = gh.sum(-1, keepdim=True)
    s2 = (gh * xh).sum(-1, keepdim=True)
    return (n * gh - s1 - xh * s2) * (rstd / n), e


def surprise(e, tau):
    d = e.shape[-1]
    num = torch.sqrt((e * e).sum(-1) + 1e-12)
    return num * torch.rsqrt((tau * tau).sum(-1) + SURPRISE_EPS * d)


def decay(c):
    """`D[t, s] = exp(c_t - c_s)` for `s <= t`, else 0 (c: `... x n`)."""
    n = c.shape[-1]
    low = torch.ones(n, n, dtype=torch.bool).tril()
    diff = (c.unsqueeze(-1) - c.unsqueeze(-2)).masked_fill(~low, -math.inf)
    return torch.exp(diff)


def layout(cfg, vocab, embed, classes):
    """`(name, shape)` of every parameter, in our order."""
    L, H, d = cfg.layers, cfg.heads, cfg.head_dim
    W = H * d
    F = cfg.ffn * W
    out = [("in.w", [embed, W]), ("in.b", [W]), ("norm1", [L, W]),
           ("wq", [L, W, W]), ("wk", [L, W, W]), ("wv", [L, W, W]), ("wo", [L, W, W]),
           ("lr.w", [L, W, H]), ("lr.b", [L, H])]
    if cfg.forget:
        out += [("forget.w", [L, W, H]), ("forget.b", [L, H]), ("forget.a", [L, H])]
    if cfg.momentum:
        out += [("momentum.w", [L, W, H]), ("momentum.b", [L, H])]
    if cfg.gate == "surprise":
        out += [("surprise.threshold", [L, H]), ("surprise.temperature", [L, H])]
    if cfg.sidecar > 0:
        out += [("sidecar.w", [L, W, H]), ("sidecar.b", [L, H]), ("sidecar.null", [L, H])]
    for i, (r, c, bias) in enumerate(fast_layers(cfg)):
        out.append((f"init.w{i}", [L, H, r, c]))
        if bias:
            out.append((f"init.b{i}", [L, H, 1, c]))
    if cfg.memory != "linear":
        out += [("ln.gamma", [L, H, 1, d]), ("ln.beta", [L, H, 1, d])]
    if F > 0:
        out += [("norm2", [L, W]), ("ffn.w1", [L, W, F]), ("ffn.b1", [L, F]),
                ("ffn.w2", [L, F, W]), ("ffn.b2", [L, W])]
    out += [("out.norm", [W]), ("out.w", [W, classes]), ("out.b", [classes]),
            ("head.w", [classes, classes]), ("head.b", [classes]), ("embed.table", [vocab, embed])]
    return out


def fast_layers(cfg):
    d = cfg.head_dim
    if cfg.memory == "linear":
        return [(d, d, False)]
    if cfg.memory == "mlp":
        return [(d, 4 * d, True), (4 * d, d, True)]
    raise ValueError(f"memory {cfg.memory!r} is not in this script")


class Mnemosyne(torch.nn.Module):
    """The token model. `forward(tokens (B, T) int64) -> logits (B, T, classes)`."""

    def __init__(self, cfg, vocab=256, embed=32, classes=256, dtype=torch.float32, seed=0):
        super().__init__()
        self.cfg = cfg
        self.names = [n for n, _ in layout(cfg, vocab, embed, classes)]
        gen = torch.Generator().manual_seed(seed)
        W = cfg.heads * cfg.head_dim
        for name, shape in layout(cfg, vocab, embed, classes):
            self.register_parameter(name.replace(".", "_"),
                                    torch.nn.Parameter(torch.zeros(shape, dtype=dtype)))
        # Our initialisation's distributions (not its random stream).
        sd = {"in.w": 1 / math.sqrt(embed), "wq": 1 / math.sqrt(W), "wk": 1 / math.sqrt(W),
              "wv": 1 / math.sqrt(W), "wo": 0.5 / math.sqrt(W), "lr.w": 0.02, "forget.w": 0.02,
              "momentum.w": 0.02, "sidecar.w": 0.02, "init.w0": 0.02, "init.w1": 0.02,
              "ffn.w1": 1 / math.sqrt(W), "ffn.w2": 0.5 / math.sqrt(max(cfg.ffn * W, 1)),
              "out.w": 1 / math.sqrt(W), "embed.table": 1.0}
        fill = {"norm1": 1.0, "norm2": 1.0, "out.norm": 1.0, "ln.gamma": 1.0, "forget.b": -6.9,
                "surprise.threshold": 0.5, "surprise.temperature": -2.25, "sidecar.b": -2.0}
        with torch.no_grad():
            for name in self.names:
                p = self.p(name)
                if name in sd:
                    p.copy_(torch.randn(p.shape, generator=gen, dtype=torch.float64) * sd[name])
                elif name in fill:
                    p.fill_(fill[name])
            self.p("head.w").copy_(torch.eye(classes, dtype=dtype))

    def p(self, name):
        return getattr(self, name.replace(".", "_"))

    def load(self, named):
        """Copies `{our name: array}` into the parameters."""
        with torch.no_grad():
            for name in self.names:
                src = torch.as_tensor(np.asarray(named[name]), dtype=self.p(name).dtype)
                self.p(name).copy_(src.reshape(self.p(name).shape))

    # ----------------------------------------------------------------- the whole model
    def forward(self, tokens):
        cfg, p = self.cfg, self.p
        B, T = tokens.shape
        H, d = cfg.heads, cfg.head_dim
        h = p("embed.table")[tokens] @ p("in.w") + p("in.b")
        for l in range(cfg.layers):
            a = rms_norm(h, p("norm1")[l])

            def heads(x):  # (B, T, H*d) -> (B, H, T, d)
                return x.view(B, T, H, d).transpose(1, 2)

            def per_head(name_w, name_b):  # (B, T, H) -> (B, H, T)
                return (a @ p(name_w)[l] + p(name_b)[l]).transpose(1, 2)

            q = l2_normalize(heads(a @ p("wq")[l]))
            k = l2_normalize(heads(a @ p("wk")[l]))
            v = heads(a @ p("wv")[l])
            theta = cfg.lr * torch.sigmoid(per_head("lr.w", "lr.b"))
            log_keep = None
            if cfg.forget:
                log_keep = -softplus(per_head("forget.w", "forget.b")) * torch.exp(p("forget.a")[l])[:, None]
            log_eta = None
            if cfg.momentum:
                log_eta = -softplus(-per_head("momentum.w", "momentum.b"))
            if cfg.exact():
                o, s = exact_delta(q, k, v, theta, log_keep, p("init.w0")[l])
            else:
                o, s = self.chunked(l, q, k, v, theta, log_keep, log_eta)
            if cfg.sidecar > 0:
                gate = torch.sigmoid(per_head("sidecar.w", "sidecar.b"))
                o = o + sidecar_read(q, k, v, s.detach(), p("sidecar.null")[l], gate, cfg.sidecar)
            h = h + o.transpose(1, 2).reshape(B, T, H * d) @ p("wo")[l]
            if cfg.ffn > 0:
                a2 = rms_norm(h, p("norm2")[l])
                z = gelu(a2 @ p("ffn.w1")[l] + p("ffn.b1")[l])
                h = h + z @ p("ffn.w2")[l] + p("ffn.b2")[l]
        y = rms_norm(h, p("out.norm")) @ p("out.w") + p("out.b")
        return y @ p("head.w") + p("head.b")

    def loss(self, tokens, targets, mask):
        """Mean softmax cross-entropy over the masked positions."""
        logits = self.forward(tokens)
        ce = torch.nn.functional.cross_entropy(logits[mask], targets[mask], reduction="sum")
        return ce / mask.sum()

    # ------------------------------------------------------- the mini-batch dual form
    def chunked(self, l, q, k, v, theta, log_keep, log_eta):
        """Memory reads (B, H, T, d) and surprise (B, H, T), chunk by chunk."""
        cfg, p = self.cfg, self.p
        B, H, T, d = q.shape
        nf = len(fast_layers(cfg))
        phi = []
        for i in range(nf):
            w = p(f"init.w{i}")[l].expand(B, -1, -1, -1)
            b = p(f"init.b{i}")[l].expand(B, -1, -1, -1) if cfg.memory == "mlp" else None
            phi.append((w, b))
        mom = [(torch.zeros_like(w), None if b is None else torch.zeros_like(b)) for w, b in phi] \
            if cfg.momentum else None
        ln = (p("ln.gamma")[l], p("ln.beta")[l]) if cfg.memory == "mlp" else None
        gate = (p("surprise.threshold")[l], p("surprise.temperature")[l]) if cfg.gate == "surprise" else None
        outs, surps = [], []
        for t0 in range(0, T, cfg.chunk):
            sl = slice(t0, min(t0 + cfg.chunk, T))
            o, s, phi, mom = dual_segment(
                cfg.memory, ln, gate, phi, mom, q[:, :, sl], k[:, :, sl], v[:, :, sl], theta[:, :, sl],
                None if log_keep is None else log_keep[:, :, sl],
                None if log_eta is None else log_eta[:, :, sl])
            outs.append(o)
            surps.append(s)
        return torch.cat(outs, 2), torch.cat(surps, 2)


def exact_delta(q, k, v, theta, log_keep, w0, block=EXACT_BLOCK):
    """The exact delta rule with forget gate, in blocks: reads and surprise."""
    B, H, T, d = q.shape
    w = w0.expand(B, -1, -1, -1)
    outs, surps = [], []
    for t0 in range(0, T, block):
        sl = slice(t0, min(t0 + block, T))
        Q, K, V, th = q[:, :, sl], k[:, :, sl], v[:, :, sl], theta[:, :, sl]
        n = Q.shape[2]
        if log_keep is None:
            D = torch.ones(n, n, dtype=q.dtype).tril()
            bcol = pcol = ik = None
        else:
            lk = log_keep[:, :, sl]
            c = lk.cumsum(-1)
            D = decay(c)
            bcol, pcol, ik = torch.exp(c), torch.exp(c - lk), torch.exp(-lk)
        Dth = D * th.unsqueeze(-2)
        A = (K @ K.transpose(-1, -2) * Dth).tril(-1)
        kw = K @ w
        if ik is not None:
            A = A * ik.unsqueeze(-1)
            kw = kw * pcol.unsqueeze(-1)
        R = torch.linalg.solve_triangular(A, V - kw, upper=False, unitriangular=True)
        qw = Q @ w
        if bcol is not None:
            qw = qw * bcol.unsqueeze(-1)
        outs.append(qw + (Q @ K.transpose(-1, -2) * Dth) @ R)
        surps.append(surprise(R, V))
        upd = K.transpose(-1, -2) @ (Dth[..., -1, :].unsqueeze(-1) * R)
        w = (w * bcol[..., -1, None, None] if bcol is not None else w) + upd
    return torch.cat(outs, 2), torch.cat(surps, 2)


def inner_grads(memory, ln, phi, k, v):
    """Per fast layer `(X, G)` at `phi`, then the error `e` and the target `tau`."""
    if memory == "linear":
        e = k @ phi[0][0] - v
        return [(k, e)], e, v
    (w1, b1), (w2, b2) = phi
    z1 = k @ w1 + b1
    x2 = gelu(z1)
    tau = v - k
    g2, e = ln_fused_grad(x2 @ w2 + b2, ln[0], ln[1], tau)
    g1 = (g2 @ w2.transpose(-1, -2)) * gelu_prime(z1)
    return [(k, g1), (x2, g2)], e, tau


def dual_segment(memory, ln, gate, phi, mom, q, k, v, theta, log_keep, log_eta):
    """One chunk: every inner gradient at the chunk's start weights `phi`."""
    n = q.shape[2]
    xg, e, tau = inner_grads(memory, ln, phi, k, v)
    s = surprise(e, tau)
    if gate is not None:
        thr, temp = gate
        g = torch.sigmoid((s - thr[:, None]) / softplus(temp)[:, None])
        theta = theta * g
        if log_keep is not None:
            log_keep = log_keep * g  # a skipped write also skips forgetting
    bcol = None
    if log_keep is not None:
        ck = log_keep.cumsum(-1)
        db, bcol = decay(ck), torch.exp(ck)
    if log_eta is not None:
        ce = log_eta.cumsum(-1)
        nm = decay(ce) * theta.unsqueeze(-2)
        m = torch.exp(ce)
        if bcol is not None:
            gamma, f = db @ nm, (db @ m.unsqueeze(-1)).squeeze(-1)
        else:
            gamma, f = nm.cumsum(-2), m.cumsum(-1)
    else:
        base = db if bcol is not None else torch.ones(n, n, dtype=q.dtype).tril()
        gamma, f, nm, m = base * theta.unsqueeze(-2), None, None, None
    qin, z = q, q
    new_phi, new_mom = [], [] if mom is not None else None
    for i, (x, g) in enumerate(xg):
        w, b = phi[i]
        sw, sb = mom[i] if mom is not None else (None, None)
        # Read at every token's updated weights.
        z = qin @ w
        if bcol is not None:
            z = z * bcol.unsqueeze(-1)
        if sw is not None:
            z = z + (qin @ sw) * f.unsqueeze(-1)
        z = z - ((qin @ x.transpose(-1, -2)).tril() * gamma) @ g
        if b is not None:
            bias = bcol.unsqueeze(-1) * b if bcol is not None else b
            if sb is not None:
                bias = bias + f.unsqueeze(-1) * sb
            z = z + (bias - gamma @ g)
        if i + 1 < len(xg):
            qin = gelu(z)
        # The weights after the chunk.
        bn = bcol[..., -1, None, None] if bcol is not None else None
        g_last = gamma[..., -1, :].unsqueeze(-1)
        w_end = w * bn if bn is not None else w
        b_end = None if b is None else (b * bn if bn is not None else b)
        if sw is not None:
            fn = f[..., -1, None, None]
            w_end = w_end + sw * fn
            if b_end is not None:
                b_end = b_end + sb * fn
        w_end = w_end - x.transpose(-1, -2) @ (g_last * g)
        if b_end is not None:
            b_end = b_end - g_last.transpose(-1, -2) @ g
        new_phi.append((w_end, b_end))
        if mom is not None:
            mn = m[..., -1, None, None]
            n_last = nm[..., -1, :].unsqueeze(-1)
            sw_end = sw * mn - x.transpose(-1, -2) @ (n_last * g)
            sb_end = None if sb is None else sb * mn - n_last.transpose(-1, -2) @ g
            new_mom.append((sw_end, sb_end))
    if ln is not None:
        xh, _ = ln_stats(z)
        z = q + xh * ln[0] + ln[1]
    return z, s, new_phi, new_mom


def sidecar_mask(surp, slots):
    """`mask[lane, t, j]`: token `j` is held in the cache when token `t` reads it (surp:
    (lanes, T) scores). A token enters a free slot, else evicts the lowest score (the first of
    equals) if strictly above it; token `t` reads the cache as it was before it entered."""
    lanes, T = surp.shape
    held = np.full((lanes, slots), -1, dtype=np.int64)
    scores = np.zeros((lanes, slots))
    inc = np.zeros((lanes, T + 1), dtype=bool)  # column T: "no token"
    mask = np.zeros((lanes, T, T), dtype=bool)
    rows = np.arange(lanes)
    for t in range(T):
        mask[:, t] = inc[:, :T]
        free = held < 0
        has_free = free.any(1)
        first_free = free.argmax(1)
        at_low = np.where(free, np.inf, scores).argmin(1)
        low = scores[rows, at_low]
        s = surp[:, t]
        at = np.where(has_free, first_free, at_low)
        ok = has_free | (s > low)
        r, a = rows[ok], at[ok]
        inc[r, held[r, a]] = False  # -1 clears the sentinel column
        held[r, a] = t
        scores[r, a] = s[ok]
        inc[r, t] = True
    return mask


def sidecar_read(q, k, v, surp, null, gate, slots):
    """`gate * softmax([null, q k^T / sqrt(d) over held keys]) [0, V]`."""
    B, H, T, d = q.shape
    mask = sidecar_mask(surp.reshape(B * H, T).to(torch.float64).cpu().numpy(), slots)
    mask = torch.from_numpy(mask).view(B, H, T, T)
    logits = (q @ k.transpose(-1, -2) / math.sqrt(d)).masked_fill(~mask, -math.inf)
    nul = null.view(1, H, 1, 1).expand(B, H, T, 1)
    pr = torch.softmax(torch.cat([nul, logits], -1), -1)[..., 1:]
    return (pr @ v) * gate.unsqueeze(-1)
