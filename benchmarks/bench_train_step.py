"""Profile one training step of the ADE encoder on this CPU: where the time goes, and what each lever saves.

Feeds real posts (``--data``, a Task 1 CSV) in batches of ``--batch`` to the offline model, the same way the
trainer does (dynamic padding, length-grouped batches, the head and tail of long posts kept within
``--max-length``), and times forward, backward and the AdamW step under each variant:

- ``fp32``: every weight trained (the trainer before this benchmark);
- ``freeze-emb``: the vocabulary matrix frozen (``model.freeze_embeddings``: 82 % of e5-small's weights);
- ``freeze-emb+bf16``: plus bf16 autocast (only where the CPU has native bf16: AVX512-BF16 or AMX);
- ``freeze-emb+lower6``: plus the lower 6 of 12 layers frozen (``model.freeze_layers: 6``).

    .venv/bin/python benchmarks/bench_train_step.py --data runs/cpu-full/pool.csv   # ~3 min on 2 cores
"""

from __future__ import annotations

import argparse
import sys
import time
from pathlib import Path

import numpy as np
import pandas as pd
import torch

sys.path.insert(0, str(Path(__file__).resolve().parent))

from _machine import append_section, describe_machine

from medsift.ade.encode import encode_posts
from medsift.ade.train import freeze_for_training
from medsift.models import resolve_model
from medsift.training import cpu_has_native_bf16


def _batches(tokenizer, texts: list[str], batch: int, max_length: int, steps: int, seed: int):
    enc = encode_posts(
        tokenizer, texts, max_length=max_length, policy="head_tail", head_fraction=0.5, stride=64
    )
    feats = sorted(enc.features, key=lambda f: len(f["input_ids"]))  # length-grouped, as the trainer samples
    rng = np.random.default_rng(seed)
    starts = rng.choice(max(1, len(feats) - batch), size=steps, replace=False)
    out = []
    for s in starts:
        group = feats[s : s + batch]
        width = max(len(f["input_ids"]) for f in group)
        ids = torch.full((len(group), width), tokenizer.pad_token_id)
        mask = torch.zeros((len(group), width), dtype=torch.long)
        for i, f in enumerate(group):
            ids[i, : len(f["input_ids"])] = torch.tensor(f["input_ids"])
            mask[i, : len(f["input_ids"])] = 1
        out.append((ids, mask, torch.tensor(rng.integers(0, 2, len(group)))))
    return out


def _profile(name: str, batches, *, freeze_embeddings: bool, freeze_layers: int, bf16: bool) -> dict:
    from transformers import AutoModelForSequenceClassification

    torch.manual_seed(0)
    model = AutoModelForSequenceClassification.from_pretrained(
        resolve_model("offline:e5-small"), num_labels=2
    )
    freeze_for_training(model, freeze_embeddings=freeze_embeddings, freeze_layers=freeze_layers)
    model.train()
    params = [p for p in model.parameters() if p.requires_grad]
    opt = torch.optim.AdamW(params, lr=1e-5)
    times = {"forward": 0.0, "backward": 0.0, "optimizer": 0.0}
    for i, (ids, mask, y) in enumerate(batches):
        t0 = time.perf_counter()
        with torch.autocast("cpu", dtype=torch.bfloat16, enabled=bf16):
            loss = torch.nn.functional.cross_entropy(
                model(input_ids=ids, attention_mask=mask).logits.float(), y
            )
        t1 = time.perf_counter()
        loss.backward()
        t2 = time.perf_counter()
        opt.step()
        opt.zero_grad(set_to_none=True)
        t3 = time.perf_counter()
        if i >= 2:  # the first steps allocate and warm up
            times["forward"] += t1 - t0
            times["backward"] += t2 - t1
            times["optimizer"] += t3 - t2
    n = len(batches) - 2
    step = sum(times.values()) / n
    row = {"variant": name, "step_s": step, **{k: v / n / step for k, v in times.items()}}
    print(
        f"{name:<22} {step:.3f} s/step  forward {row['forward']:.0%}  backward {row['backward']:.0%}  "
        f"optimizer {row['optimizer']:.0%}",
        flush=True,
    )
    return row


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--data", type=Path, required=True)
    ap.add_argument("--batch", type=int, default=16)
    ap.add_argument("--max-length", type=int, default=128)
    ap.add_argument("--steps", type=int, default=22)
    ap.add_argument("--write", action="store_true", help="write the table into docs/benchmarks.md")
    args = ap.parse_args()
    from transformers import AutoTokenizer

    frame = pd.read_csv(args.data, dtype=str, keep_default_na=False)
    texts = frame["text"].sample(n=min(4000, len(frame)), random_state=0).tolist()
    tokenizer = AutoTokenizer.from_pretrained(resolve_model("offline:e5-small"))
    batches = _batches(tokenizer, texts, args.batch, args.max_length, args.steps, seed=0)
    mean_width = np.mean([b[0].shape[1] for b in batches])
    print(f"{torch.get_num_threads()} threads, batch {args.batch}, mean padded width {mean_width:.0f} tokens")
    variants = [("fp32 (all weights)", dict(freeze_embeddings=False, freeze_layers=0, bf16=False))]
    variants.append(("freeze-emb", dict(freeze_embeddings=True, freeze_layers=0, bf16=False)))
    variants.append(("freeze-emb + bf16", dict(freeze_embeddings=True, freeze_layers=0, bf16=True)))
    variants.append(("freeze-emb + lower 6", dict(freeze_embeddings=True, freeze_layers=6, bf16=False)))
    rows = [_profile(name, batches, **kw) for name, kw in variants]
    if args.write:
        base = rows[0]["step_s"]
        lines = [
            f"Machine: {describe_machine()}; native bf16: {cpu_has_native_bf16()}. "
            f"{torch.get_num_threads()} threads, batch {args.batch}, max length {args.max_length}, "
            f"{args.steps - 2} timed steps of length-grouped real posts (mean padded width {mean_width:.0f}).",
            "",
            "| variant | s/step | vs fp32 | forward | backward | AdamW |",
            "| --- | ---: | ---: | ---: | ---: | ---: |",
        ]
        for r in rows:
            lines.append(
                f"| {r['variant']} | {r['step_s']:.3f} | {base / r['step_s']:.2f}x | {r['forward']:.0%} | "
                f"{r['backward']:.0%} | {r['optimizer']:.0%} |"
            )
        lines += [
            "",
            "    .venv/bin/python benchmarks/bench_train_step.py --data runs/cpu-full/pool.csv --write",
        ]
        append_section("ADE training step on a CPU (profile)", "\n".join(lines))


if __name__ == "__main__":
    main()
