#!/usr/bin/env python3
"""A PyTorch version of mambadna's model, for the GPU comparisons in docs/BENCHMARKS.md.

The model is mamba_ssm's MambaLMHeadModel (Mamba-1 mixer, RMSNorm, pre-norm residual, LM head
tied to the embedding) written out in plain PyTorch, with the selective scan as mamba_ssm's
reference definition computes it (`selective_scan_ref`: a loop over time). It reads mambadna's
HDF5 checkpoints, whose datasets are the state_dict.

  torch_mamba.py golden GOLDEN_DIR
      float64 on the CPU against the golden log-probs (checks this file against the reference).
  torch_mamba.py compare MODEL.h5 FASTA SCORES.h5 [--device cuda]
      per-position log-probs of the first record against `mambadna score --per-position -o
      SCORES.h5` (checks that weights mean the same in both programs).
  torch_mamba.py export MODEL.h5 OUT.h5 [--seed 1] [--noise 0.1]
      the model with every weight moved by PyTorch (relative Gaussian noise, as training would),
      written as an HDF5 state_dict with MODEL's attributes (checks the way back to mambadna).
  torch_mamba.py train-bench [--shape 130m] [-b 8] [-L 512] [--steps 3] [--device cuda]
      training steps (forward, backward, AdamW) of a freshly initialised model: tokens/s.
"""
import argparse
import json
import math
import os
import sys
import time

import h5py
import numpy as np
import torch
import torch.nn.functional as F

SHAPES = {"tiny": (64, 2), "small": (256, 8), "130m": (768, 24)}  # d_model, n_layer


def config_of(shape):
    d, n = SHAPES[shape]
    return dict(d_model=d, n_layer=n, vocab_size=256, d_state=16, d_conv=4, expand=2,
                dt_rank=math.ceil(d / 16), pad_vocab_size_multiple=8, norm_epsilon=1e-5)


def padded_vocab(c):
    m = c["pad_vocab_size_multiple"]
    return (c["vocab_size"] + m - 1) // m * m


def selective_scan_ref(u, delta, A, B, C, D, z, delta_bias):
    """u, delta, z: (b, l, e); A: (e, n); B, C: (b, l, n); D, delta_bias: (e)."""
    delta = F.softplus(delta + delta_bias)
    dA = torch.exp(delta.unsqueeze(-1) * A)                    # (b, l, e, n)
    dBu = delta.unsqueeze(-1) * B.unsqueeze(2) * u.unsqueeze(-1)
    h = u.new_zeros(u.shape[0], u.shape[2], A.shape[1])        # (b, e, n)
    ys = []
    for t in range(u.shape[1]):
        h = dA[:, t] * h + dBu[:, t]
        ys.append(torch.einsum("ben,bn->be", h, C[:, t]))
    y = torch.stack(ys, dim=1) + u * D
    return y * F.silu(z)


class Mamba(torch.nn.Module):
    def __init__(self, c, dtype=torch.float32):
        super().__init__()
        self.c = c
        D, E, N, K, R = (c["d_model"], c["expand"] * c["d_model"], c["d_state"], c["d_conv"],
                         c["dt_rank"])
        V = padded_vocab(c)
        # self.p: the parameters by state_dict key (registered with "_" for ".", which module
        # attribute names cannot hold).
        self.p = {}

        def add(name, value):
            self.p[name] = torch.nn.Parameter(value)
            self.register_parameter(name.replace(".", "_"), self.p[name])

        add("backbone.embedding.weight", torch.randn(V, D, dtype=dtype) * 0.02)
        for i in range(c["n_layer"]):
            pre = f"backbone.layers.{i}."
            add(pre + "norm.weight", torch.ones(D, dtype=dtype))
            add(pre + "mixer.in_proj.weight", torch.randn(2 * E, D, dtype=dtype) / math.sqrt(D))
            add(pre + "mixer.conv1d.weight", torch.randn(E, 1, K, dtype=dtype) / math.sqrt(K))
            add(pre + "mixer.conv1d.bias", torch.zeros(E, dtype=dtype))
            add(pre + "mixer.x_proj.weight", torch.randn(R + 2 * N, E, dtype=dtype) / math.sqrt(E))
            add(pre + "mixer.dt_proj.weight", torch.randn(E, R, dtype=dtype) * R ** -0.5)
            dt = torch.exp(torch.rand(E, dtype=dtype) * (math.log(0.1) - math.log(1e-3)) + math.log(1e-3))
            add(pre + "mixer.dt_proj.bias", dt + torch.log(-torch.expm1(-dt)))
            add(pre + "mixer.A_log", torch.log(torch.arange(1, N + 1, dtype=dtype)).repeat(E, 1))
            add(pre + "mixer.D", torch.ones(E, dtype=dtype))
            add(pre + "mixer.out_proj.weight", torch.randn(D, E, dtype=dtype) / math.sqrt(E))
        add("backbone.norm_f.weight", torch.ones(D, dtype=dtype))

    def rmsnorm(self, x, w):
        return x * torch.rsqrt(x.pow(2).mean(-1, keepdim=True) + self.c["norm_epsilon"]) * w

    def mixer(self, x, pre):
        c, p = self.c, self.p
        E, N, K, R = c["expand"] * c["d_model"], c["d_state"], c["d_conv"], c["dt_rank"]
        L = x.shape[1]
        xz = x @ p[pre + "in_proj.weight"].t()
        xi, z = xz[..., :E], xz[..., E:]
        xc = F.conv1d(xi.transpose(1, 2), p[pre + "conv1d.weight"], p[pre + "conv1d.bias"],
                      padding=K - 1, groups=E)[..., :L].transpose(1, 2)
        u = F.silu(xc)
        xdbl = u @ p[pre + "x_proj.weight"].t()
        dt, B, C = xdbl[..., :R], xdbl[..., R:R + N], xdbl[..., R + N:]
        delta = dt @ p[pre + "dt_proj.weight"].t()
        A = -torch.exp(p[pre + "A_log"])
        y = selective_scan_ref(u, delta, A, B, C, p[pre + "D"], z, p[pre + "dt_proj.bias"])
        return y @ p[pre + "out_proj.weight"].t()

    def forward(self, tokens):
        p = self.p
        emb = p["backbone.embedding.weight"]
        r = emb[tokens]
        for i in range(self.c["n_layer"]):
            pre = f"backbone.layers.{i}."
            r = r + self.mixer(self.rmsnorm(r, p[pre + "norm.weight"]), pre + "mixer.")
        h = self.rmsnorm(r, p["backbone.norm_f.weight"])
        return h @ emb.t()  # logits (b, l, V)


def load(path, dtype, device):
    f = h5py.File(path, "r")
    a = f.attrs
    if "mamba_ssm_config" in a:  # the MambaConfig a mamba_ssm user builds the model from
        text = a["mamba_ssm_config"]
        j = json.loads(text.decode() if isinstance(text, bytes) else text)
        s = j["ssm_cfg"]
        c = dict(d_model=j["d_model"], n_layer=j["n_layer"], vocab_size=j["vocab_size"],
                 d_state=s["d_state"], d_conv=s["d_conv"], expand=s["expand"], dt_rank=s["dt_rank"],
                 pad_vocab_size_multiple=j["pad_vocab_size_multiple"], norm_epsilon=float(a["norm_epsilon"]))
    else:
        c = dict(d_model=int(a["d_model"]), n_layer=int(a["n_layer"]), vocab_size=int(a["vocab_size"]),
                 d_state=int(a["d_state"]), d_conv=int(a["d_conv"]), expand=int(a["expand"]),
                 dt_rank=int(a["dt_rank"]), pad_vocab_size_multiple=int(a["pad_vocab_size_multiple"]),
                 norm_epsilon=float(a["norm_epsilon"]))
    if c["dt_rank"] <= 0:
        c["dt_rank"] = math.ceil(c["d_model"] / 16)
    m = Mamba(c, dtype)
    with torch.no_grad():
        for k, v in m.p.items():
            src = "backbone.embeddings.weight" if k == "backbone.embedding.weight" and k not in f else k
            v.copy_(torch.from_numpy(np.asarray(f[src][...], dtype=np.float64)).to(dtype))
    return m.to(device)


def first_record(path, model_path):
    """The first record's bases, case-folded as the model's tokenizer does (tokenizer_case:
    upper folds; keep, or a file without the attribute, leaves the bytes as they are)."""
    import gzip
    case = h5py.File(model_path, "r").attrs.get("tokenizer_case", "keep")
    if isinstance(case, bytes):
        case = case.decode()
    op = gzip.open if path.endswith(".gz") else open
    seq, started = [], False
    with op(path, "rt") as fh:
        for line in fh:
            if line.startswith(">"):
                if started:
                    break
                started = True
            elif started:
                seq.append(line.strip())
    text = "".join(seq)
    return text.upper() if case == "upper" else text


def logprobs(m, text, device):
    tok = torch.tensor([list(text.encode())], device=device)
    with torch.no_grad():
        lp = F.log_softmax(m(tok).double(), dim=-1)[0]
    tgt = tok[0, 1:]
    return lp[:-1].gather(1, tgt.unsqueeze(1)).squeeze(1).cpu().numpy()


def cmd_golden(a):
    m = load(a.golden + "/tiny.h5", torch.float64, "cpu")
    want = h5py.File(a.golden + "/expected.h5", "r")["logprob"][...]
    got = logprobs(m, first_record(a.golden + "/input.fa", a.golden + "/tiny.h5"), "cpu")
    d = np.max(np.abs(got - want))
    print(f"golden: max |logprob - expected| = {d:.3g} over {len(want)} positions")
    return 0 if d < 1e-9 else 1


def cmd_compare(a):
    m = load(a.model, torch.float32, a.device)
    got = logprobs(m, first_record(a.fasta, a.model), a.device)
    # mambadna's position t is log p(x_t | x_<t) (NaN at t = 0); got[i] is position i + 1.
    want = h5py.File(a.scores, "r")["per_position/0/logprob"][1:].astype(np.float64)
    n = min(len(got), len(want))
    ok = np.isfinite(want[:n])
    d = np.max(np.abs(got[:n][ok] - want[:n][ok]))
    print(f"compare: max |torch - mambadna| = {d:.3g} over {int(ok.sum())} positions")
    return 0 if d < 1e-3 else 1


def cmd_export(a):
    m = load(a.model, torch.float32, "cpu")
    torch.manual_seed(a.seed)
    with torch.no_grad():
        for v in m.p.values():
            v.add_(torch.randn_like(v) * a.noise * v.abs().mean().clamp_min(1e-3))
    tmp = a.out + ".tmp"
    with h5py.File(a.model, "r") as src, h5py.File(tmp, "w") as dst:
        for k, v in src.attrs.items():
            dst.attrs[k] = v
        for k, v in m.p.items():
            dst.create_dataset(k, data=v.detach().numpy())
    os.replace(tmp, a.out)
    print(f"export: {len(m.p)} tensors to {a.out}")
    return 0


def cmd_train_bench(a):
    torch.manual_seed(1)
    m = Mamba(config_of(a.shape)).to(a.device)
    opt = torch.optim.AdamW(m.parameters(), lr=1e-4, betas=(0.9, 0.95), weight_decay=0.1)
    tok = torch.randint(0, 4, (a.b, a.L + 1), device=a.device)
    tok = torch.tensor([65, 67, 71, 84], device=a.device)[tok]
    def step():
        # --bf16: PyTorch's mixed precision (autocast: bf16 matrix products, fp32 weights).
        with torch.autocast(device_type=a.device.split(":")[0], dtype=torch.bfloat16, enabled=a.bf16):
            logits = m(tok[:, :-1])
        loss = F.cross_entropy(logits.reshape(-1, logits.shape[-1]).float(), tok[:, 1:].reshape(-1))
        opt.zero_grad(set_to_none=True)
        loss.backward()
        opt.step()
    step()  # warm-up
    if a.device.startswith("cuda"):
        torch.cuda.synchronize()
    t0 = time.time()
    for _ in range(a.steps):
        step()
    if a.device.startswith("cuda"):
        torch.cuda.synchronize()
    s = (time.time() - t0) / a.steps
    name = torch.cuda.get_device_name() if a.device.startswith("cuda") else "cpu"
    precision = "bf16 autocast" if a.bf16 else "fp32"
    print(f"torch\ttrain {a.shape} B{a.b} L{a.L} {precision}, reference scan\t{a.b * a.L / s:.0f} tokens/s"
          f"\t{s:.3f} s/step\t{name}")
    return 0


def main():
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    sub = ap.add_subparsers(dest="cmd", required=True)
    g = sub.add_parser("golden")
    g.add_argument("golden")
    c = sub.add_parser("compare")
    c.add_argument("model")
    c.add_argument("fasta")
    c.add_argument("scores")
    c.add_argument("--device", default="cpu")
    x = sub.add_parser("export")
    x.add_argument("model")
    x.add_argument("out")
    x.add_argument("--seed", type=int, default=1)
    x.add_argument("--noise", type=float, default=0.1)
    t = sub.add_parser("train-bench")
    t.add_argument("--shape", default="130m", choices=sorted(SHAPES))
    t.add_argument("-b", type=int, default=8)
    t.add_argument("-L", type=int, default=512)
    t.add_argument("--steps", type=int, default=3)
    t.add_argument("--device", default="cuda")
    t.add_argument("--bf16", action="store_true", help="bf16 autocast (mixed precision)")
    a = ap.parse_args()
    return {"golden": cmd_golden, "compare": cmd_compare, "export": cmd_export,
            "train-bench": cmd_train_bench}[a.cmd](a)


if __name__ == "__main__":
    sys.exit(main())
