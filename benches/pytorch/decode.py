"""Batch-1 streaming decode of `model.Mnemosyne`, written the way a PyTorch user writes a
per-token loop: every head of a layer at once, the recurrence token by token (gradient at the
chunk's start weights, momentum, forget, surprise gate, write, then read), the sidecar as a
K-entry cache. It computes the same function as the batched forward (`check.py` holds the two
together in float64)."""

import math

import torch

from model import fast_layers, gelu, inner_grads, l2_normalize, ln_stats, rms_norm, softplus, surprise


class Stream:
    """The streaming state of one sequence, and its per-token step."""

    def __init__(self, model):
        self.m = model
        cfg, p = model.cfg, model.p
        H, d, K = cfg.heads, cfg.head_dim, cfg.sidecar
        self.t = 0
        self.layers = []
        mlp = cfg.memory == "mlp"
        for l in range(cfg.layers):
            phi = [(p(f"init.w{i}")[l].detach().clone(), p(f"init.b{i}")[l].detach().clone() if mlp else None)
                   for i in range(len(fast_layers(cfg)))]
            st = {"phi": phi, "snap": phi,
                  "mom": [(torch.zeros_like(w), None if b is None else torch.zeros_like(b)) for w, b in phi]}
            if K > 0:
                st["keys"] = torch.zeros(H, K, d, dtype=phi[0][0].dtype)
                st["values"] = torch.zeros(H, K, d, dtype=phi[0][0].dtype)
                st["scores"] = [[0.0] * K for _ in range(H)]
                st["used"] = torch.zeros(H, K, dtype=torch.bool)
            self.layers.append(st)

    def read(self, l, phi, q):
        cfg, p = self.m.cfg, self.m.p
        if cfg.memory == "linear":
            return q @ phi[0][0]
        (w1, b1), (w2, b2) = phi
        xh, _ = ln_stats(gelu(q @ w1 + b1) @ w2 + b2)
        return q + xh * p("ln.gamma")[l] + p("ln.beta")[l]

    @torch.no_grad()
    def step(self, token):
        """Logits `(classes,)` after `token`."""
        cfg, p = self.m.cfg, self.m.p
        H, d = cfg.heads, cfg.head_dim
        h = p("embed.table")[token] @ p("in.w") + p("in.b")
        for l, st in enumerate(self.layers):
            a = rms_norm(h, p("norm1")[l])
            q = l2_normalize((a @ p("wq")[l]).view(H, 1, d))
            k = l2_normalize((a @ p("wk")[l]).view(H, 1, d))
            v = (a @ p("wv")[l]).view(H, 1, d)
            theta = cfg.lr * torch.sigmoid(a @ p("lr.w")[l] + p("lr.b")[l])
            if self.t % cfg.chunk == 0:
                st["snap"] = st["phi"]
            ln = (p("ln.gamma")[l], p("ln.beta")[l]) if cfg.memory == "mlp" else None
            xg, e, tau = inner_grads(cfg.memory, ln, st["snap"], k, v)
            s = surprise(e, tau).view(H)
            g = torch.ones(H, dtype=h.dtype)
            if cfg.gate == "surprise":
                thr, temp = p("surprise.threshold")[l], p("surprise.temperature")[l]
                g = torch.sigmoid((s - thr) / softplus(temp))
            keep = torch.ones(H, dtype=h.dtype)
            if cfg.forget:
                lk = -softplus(a @ p("forget.w")[l] + p("forget.b")[l]) * torch.exp(p("forget.a")[l])
                keep = torch.exp(g * lk)
            eta = torch.zeros(H, dtype=h.dtype)
            if cfg.momentum:
                eta = torch.exp(-softplus(-(a @ p("momentum.w")[l] + p("momentum.b")[l])))
            c = (-theta * g).view(H, 1, 1)
            eta, keep = eta.view(H, 1, 1), keep.view(H, 1, 1)
            phi, mom = [], []
            for (x, gr), (w, b), (sw, sb) in zip(xg, st["phi"], st["mom"]):
                sw = eta * sw + c * (x.transpose(-1, -2) @ gr)
                sb = None if b is None else eta * sb + c * gr
                mom.append((sw, sb))
                phi.append((keep * w + sw, None if b is None else keep * b + sb))
            st["phi"], st["mom"] = phi, mom
            o = self.read(l, phi, q).view(H, d)
            if cfg.sidecar > 0:
                gate = torch.sigmoid(a @ p("sidecar.w")[l] + p("sidecar.b")[l]).view(H, 1)
                o = o + gate * self.sidecar(l, st, q.view(H, d), k.view(H, d), v.view(H, d), s)
            h = h + o.reshape(H * d) @ p("wo")[l]
            if cfg.ffn > 0:
                a2 = rms_norm(h, p("norm2")[l])
                h = h + gelu(a2 @ p("ffn.w1")[l] + p("ffn.b1")[l]) @ p("ffn.w2")[l] + p("ffn.b2")[l]
        self.t += 1
        y = rms_norm(h, p("out.norm")) @ p("out.w") + p("out.b")
        return y @ p("head.w") + p("head.b")

    def sidecar(self, l, st, q, k, v, s):
        """The gated read of the cache as it was, then the token's admission."""
        p, d = self.m.p, self.m.cfg.head_dim
        H = q.shape[0]
        logits = ((st["keys"] @ q.unsqueeze(-1)).squeeze(-1) / math.sqrt(d)).masked_fill(~st["used"], -math.inf)
        null = p("sidecar.null")[l].view(H, 1)
        pr = torch.softmax(torch.cat([null, logits], -1), -1)[:, 1:]
        read = (pr.unsqueeze(1) @ st["values"]).squeeze(1)
        for hd, score in enumerate(s.tolist()):
            used = st["used"][hd].tolist()
            scores = st["scores"][hd]
            if False in used:
                at = used.index(False)
            else:
                low = min(scores)
                at = scores.index(low) if score > low else None
            if at is not None:
                st["keys"][hd, at] = k[hd]
                st["values"][hd, at] = v[hd]
                st["scores"][hd][at] = score
                st["used"][hd, at] = True
        return read
