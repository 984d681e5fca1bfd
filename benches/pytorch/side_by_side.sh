#!/usr/bin/env bash
# MNEMOSYNE on mqar-basic, ours and the PyTorch script, in one session at one thread count.
#
#   bash benches/pytorch/side_by_side.sh            # 2 threads
#   THREADS=1 STEPS=30 KEEP=/tmp/sbs bash benches/pytorch/side_by_side.sh
#
# Ours: `mnnn compare <preset> --task mqar-basic --seeds 1 --budget-steps $STEPS` gives the
# training tokens/s (batch 16, the compare's batch, from a run timed alone, validation
# passes not counted) and the batch-1 streaming decode tokens/s (2048 tokens).
# `mnnn bench mnemosyne --batch 32 --len 64` gives the forward (chunked form) tokens/s at
# batch 32, but only for the entry's default parameters (= the `mnemosyne` preset) and on its
# regression shape (16 inputs, 4 outputs: no embedding, no 256-class head): `mnnn bench`
# takes entry names, not presets, so there is no batch-32 forward figure of ours for
# `mnemosyne-delta`.
# Torch: benches/pytorch/mnemosyne.py, training at batch 16 (as ours) and 32, forward at 32,
# decode at batch 1. Needs python3 with torch, numpy (benches/pytorch/requirements.txt).
set -euo pipefail
cd "$(dirname "$0")/../.."
THREADS=${THREADS:-2}
STEPS=${STEPS:-30}
SECONDS_PER=${SECONDS_PER:-5}
PY=${PYTHON:-python3}
# Torch runs with its own default thread waiting (libgomp's threads spin): on a quiet machine
# that is its fastest setting (mnemosyne-delta training, 2 threads: 25.6K tokens/s spinning,
# 8.4K with OMP_WAIT_POLICY=PASSIVE). Under load from other processes spinning hurts it
# instead; set OMP_WAIT_POLICY=PASSIVE for that case, and say so with the figures.
# KEEP=dir keeps the raw outputs (ours' JSON, torch's JSON lines) there.
if [ -n "${KEEP:-}" ]; then
  OUT=$KEEP
  mkdir -p "$OUT"
  : >"$OUT/torch.jsonl"
else
  OUT=$(mktemp -d)
  trap 'rm -rf "$OUT"' EXIT
fi

cargo build --release -p mnnn-tools >&2
MNNN=target/release/mnnn
echo "load before: $(uptime)" >&2
echo "cpu flags: $(grep -o -m1 'avx512f\|avx2' /proc/cpuinfo | tr '\n' ' ')threads: $THREADS" >&2

for preset in mnemosyne-delta mnemosyne; do
  echo "ours: compare $preset" >&2
  RAYON_NUM_THREADS=$THREADS "$MNNN" compare "$preset" --task mqar-basic --seeds 1 \
    --budget-steps "$STEPS" --out "$OUT/compare-$preset" --json >"$OUT/ours-$preset.json"
  echo "torch: $preset" >&2
  "$PY" benches/pytorch/mnemosyne.py --preset "$preset" --threads "$THREADS" --mode train \
    --batch 16 --seconds "$SECONDS_PER" >>"$OUT/torch.jsonl"
  "$PY" benches/pytorch/mnemosyne.py --preset "$preset" --threads "$THREADS" --mode all \
    --batch 32 --seconds "$SECONDS_PER" >>"$OUT/torch.jsonl"
done
echo "ours: bench mnemosyne (default params) batch 32" >&2
RAYON_NUM_THREADS=$THREADS "$MNNN" bench mnemosyne --batch 32 --len 64 --stream 1 --json \
  >"$OUT/bench.json"
echo "load after: $(uptime)" >&2

"$PY" - "$OUT" "$THREADS" <<'EOF'
import json, sys
out, threads = sys.argv[1], sys.argv[2]
torch = [json.loads(l) for l in open(f"{out}/torch.jsonl") if l.strip()]
bench = json.load(open(f"{out}/bench.json"))["speeds"][0]

def t(preset, mode, batch):
    for r in torch:
        if r["preset"] == preset and r["mode"] == mode and r["batch"] == batch:
            return r["tokens_per_second"]
    return None

def fmt(x):
    return "-" if x is None else f"{x:,.0f}"

def ratio(a, b):
    return "-" if a is None or b is None else f"{a / b:.2f}x"

params = []
print(f"MNEMOSYNE, mqar-basic (vocab 256, length 64), {threads} thread(s); tokens/s")
print(f"| preset | measurement | ours | pytorch | ours / pytorch |")
print(f"| --- | --- | --- | --- | --- |")
for preset in ["mnemosyne-delta", "mnemosyne"]:
    rows = json.load(open(f"{out}/ours-{preset}.json"))
    rows = rows["rows"] if isinstance(rows, dict) else rows
    row = next(r for r in rows if r["entry"] == preset)
    tr, inf = row["train_tokens_per_second"], row["inference_tokens_per_second"]
    fwd = bench["chunked_tokens_per_second"] if preset == "mnemosyne" else None
    lines = [
        ("train, batch 16", tr, t(preset, "train", 16)),
        ("train, batch 32 (torch only)", None, t(preset, "train", 32)),
        ("forward, batch 32" + (" (ours: bench, regression shape)" if fwd else " (ours: none)"),
         fwd, t(preset, "forward", 32)),
        ("decode, batch 1", inf, t(preset, "decode", 1)),
        ("ours' decode / torch forward b32", inf, t(preset, "forward", 32)),
    ]
    for name, a, b in lines:
        print(f"| {preset} | {name} | {fmt(a)} | {fmt(b)} | {ratio(a, b)} |")
    tp = next(r["params"] for r in torch if r["preset"] == preset)
    params.append(f"{preset}: ours {row['params']}, torch {tp}")
print("parameters: " + "; ".join(params))
EOF
