"""Train the relevance model: a cross-encoder initialised from e5's first layers, resumable, never in CI.

    policy-qa train fit --run training/runs/rel-v1     # builds the groups once, then trains; rerun to resume
    policy-qa train export --run training/runs/rel-v1  # int8 ONNX + manifest into the bundled model folder

A run directory holds its config, the groups it was built from (so a resumed run sees the same data),
a checkpoint every `checkpoint_every` steps and a log of the loss. Loss: softmax cross-entropy over
each group's positive and negatives (listwise), so the model learns to put the answering clause above
the neighbours the first-stage ranker confuses it with; plus a pointwise term (`pointwise` times binary
cross-entropy, positives 1 and negatives 0), which gives the logits an absolute level the calibration can
read: a listwise loss alone fixes only their differences within a question. Groups with no positive
(near-domain questions the corpus does not answer) train the pointwise term only.
"""

from __future__ import annotations

import json
import logging
import math
import random
import time
from collections.abc import Callable
from dataclasses import asdict
from pathlib import Path

import numpy as np
from pydantic import BaseModel, ConfigDict

from ..knowledge.e5 import E5File, E5Tokenizer
from ..knowledge.e5.onnx import embedded_batch
from .groups import Group

logger = logging.getLogger(__name__)


class TrainConfig(BaseModel):
    """A run's recipe; stored in the run directory, so a resumed run cannot drift from it."""

    model_config = ConfigDict(frozen=True)

    layers: tuple[int, ...] = (0, 1, 2, 3)
    max_len: int = 160  # tokens per (question, clause) pair; clause p95 is ~170 tokens
    max_query_tokens: int = 48
    negatives: int = 7
    groups_per_step: int = 4
    epochs: float = 2.0
    lr: float = 5e-5
    head_lr: float = 1e-3
    warmup: float = 0.05
    mined_repeat: int = 3  # real questions are few and precious: each is seen this often per epoch
    pointwise: float = 0.5  # weight of the binary cross-entropy term beside the listwise one
    seed: int = 13
    threads: int = 2
    checkpoint_every: int = 100


def build_model(config: TrainConfig, e5: E5File):  # noqa: ANN201 - a torch module
    import torch

    from .e5_torch import load_encoder

    class RelevanceNet(torch.nn.Module):
        """Mean-pooled joint encoding of (question, clause) → one logit (e5 was trained mean-pooled)."""

        def __init__(self) -> None:
            super().__init__()
            self.bert = load_encoder(e5, list(config.layers))
            self.head = torch.nn.Linear(e5.header.hidden, 1)

        def forward(self, emb, mask):  # noqa: ANN001, ANN202
            hidden = self.bert(inputs_embeds=emb, attention_mask=mask).last_hidden_state
            weights = mask.unsqueeze(-1).to(hidden.dtype)
            pooled = (hidden * weights).sum(1) / weights.sum(1).clamp(min=1.0)
            return self.head(pooled).squeeze(-1)

    return RelevanceNet()


class PairEncoder:
    """Token ids and embedding rows for (question, clause text) pairs, as served."""

    def __init__(self, e5: E5File, max_len: int, max_query_tokens: int) -> None:
        self.e5, self.tokenizer = e5, E5Tokenizer(e5)
        self.max_len, self.max_query_tokens = max_len, max_query_tokens

    def batch(self, pairs: list[tuple[str, str]]) -> tuple[np.ndarray, np.ndarray]:
        """(embeddings [B, T, H] float32, mask [B, T] int64), padded to the longest pair."""
        ids = [self.tokenizer.pair(q, t, self.max_len, self.max_query_tokens) for q, t in pairs]
        return embedded_batch(self.e5, self.tokenizer.pad, ids)


def save_groups(path: Path, groups: list[Group]) -> None:
    with path.open("w", encoding="utf-8") as out:
        for group in groups:
            out.write(json.dumps(asdict(group), ensure_ascii=False) + "\n")


def load_groups(path: Path) -> list[Group]:
    return [Group(**json.loads(line)) for line in path.read_text("utf-8").splitlines() if line]


def train(run_dir: Path, groups: list[Group], texts: list[str], config: TrainConfig,
          on_progress: Callable[[int, int, float], None] = lambda *_: None) -> Path:
    """Train (or resume) the relevance model in `run_dir`; `texts[i]` is clause i's input."""
    import torch

    def loss_of(model, encoder: PairEncoder, chosen: list[int], rng: random.Random):  # noqa: ANN001, ANN202
        pairs, sizes, has_positive = [], [], []
        for g in (groups[i] for i in chosen):
            positive = g.positive_text or (texts[rng.choice(g.positives)] if g.positives else None)
            wanted = config.negatives + (positive is None)
            negatives = g.negatives[:wanted]
            while len(negatives) < wanted:  # too few hard ones: any other clause
                extra = rng.randrange(len(texts))
                if extra not in g.positives and extra not in negatives:
                    negatives.append(extra)
            pairs += ([(g.query, positive)] if positive is not None else []) + [(g.query, texts[n]) for n in negatives]
            sizes.append(len(negatives) + (positive is not None))
            has_positive.append(positive is not None)
        emb, mask = encoder.batch(pairs)
        scores = model(torch.from_numpy(emb), torch.from_numpy(mask))
        targets = torch.cat([torch.tensor([float(p)] + [0.0] * (n - 1)) for p, n in zip(has_positive, sizes)])
        pointwise = torch.nn.functional.binary_cross_entropy_with_logits(scores, targets)
        listwise = [torch.nn.functional.cross_entropy(s.unsqueeze(0), torch.zeros(1, dtype=torch.long))
                    for s, p in zip(scores.split(sizes), has_positive) if p]
        return config.pointwise * pointwise + (torch.stack(listwise).mean() if listwise else 0.0)

    repeats = [config.mined_repeat if g.kind in ("mined", "operator") else 1 for g in groups]
    return _run(run_dir, config, repeats, config.groups_per_step, loss_of, on_progress)


def train_binary(run_dir: Path, pairs: list[tuple[str, str, bool]], config: TrainConfig,
                 on_progress: Callable[[int, int, float], None] = lambda *_: None) -> Path:
    """Train (or resume) a classifier of (text A, text B) pairs in `run_dir` (binary cross-entropy)."""
    import torch

    def loss_of(model, encoder: PairEncoder, chosen: list[int], rng: random.Random):  # noqa: ANN001, ANN202
        emb, mask = encoder.batch([(pairs[i][0], pairs[i][1]) for i in chosen])
        scores = model(torch.from_numpy(emb), torch.from_numpy(mask))
        targets = torch.tensor([float(pairs[i][2]) for i in chosen])
        return torch.nn.functional.binary_cross_entropy_with_logits(scores, targets)

    return _run(run_dir, config, [1] * len(pairs), config.groups_per_step * (1 + config.negatives), loss_of,
                on_progress)


def _run(run_dir: Path, config: TrainConfig, repeats: list[int], per_step: int, loss_of,  # noqa: ANN001
         on_progress: Callable[[int, int, float], None]) -> Path:
    """The loop both models share: a seeded order per epoch (item i `repeats[i]` times), AdamW with
    warm-up and linear decay, a checkpoint every `checkpoint_every` steps, a resumed run continuing
    exactly where its checkpoint left it."""
    import torch

    torch.set_num_threads(config.threads)
    torch.manual_seed(config.seed)
    e5 = E5File()
    model = build_model(config, e5)
    encoder = PairEncoder(e5, config.max_len, config.max_query_tokens)
    optimizer = torch.optim.AdamW([
        {"params": [p for n, p in model.named_parameters() if not n.startswith("head.")], "lr": config.lr},
        {"params": list(model.head.parameters()), "lr": config.head_lr},
    ], weight_decay=0.01)

    def plan(epoch: int) -> list[int]:
        order = [i for i, n in enumerate(repeats) for _ in range(n)]
        random.Random(config.seed * 1000 + epoch).shuffle(order)
        return order

    steps_per_epoch = math.ceil(sum(repeats) / per_step)
    total = max(1, int(steps_per_epoch * config.epochs))
    warmup = max(1, int(total * config.warmup))
    scheduler = torch.optim.lr_scheduler.LambdaLR(
        optimizer, lambda s: min(1.0, (s + 1) / warmup) * max(0.0, (total - s) / max(1, total - warmup)))
    checkpoint, step = run_dir / "checkpoint.pt", 0
    if checkpoint.is_file():
        state = torch.load(checkpoint, weights_only=True)
        model.load_state_dict(state["model"])
        optimizer.load_state_dict(state["optimizer"])
        scheduler.load_state_dict(state["scheduler"])
        step = int(state["step"])
        logger.info("resumed at step %d of %d", step, total)

    plans: dict[int, list[int]] = {}
    log = (run_dir / "log.jsonl").open("a", encoding="utf-8")
    model.train()
    started, recent = time.perf_counter(), []
    while step < total:
        epoch, within = divmod(step, steps_per_epoch)
        if epoch not in plans:
            plans = {epoch: plan(epoch)}
        chosen = plans[epoch][within * per_step : (within + 1) * per_step]
        if not chosen:
            step += 1
            continue
        loss = loss_of(model, encoder, chosen, random.Random(config.seed * 7_919 + step))
        optimizer.zero_grad()
        loss.backward()
        torch.nn.utils.clip_grad_norm_(model.parameters(), 1.0)
        optimizer.step()
        scheduler.step()
        step += 1
        recent.append(float(loss.detach()))
        if step % 20 == 0 or step == total:
            log.write(json.dumps({"step": step, "total": total, "loss": round(sum(recent) / len(recent), 4),
                                  "seconds": round(time.perf_counter() - started, 1)}) + "\n")
            log.flush()
            recent = []
        if step % config.checkpoint_every == 0 or step == total:
            tmp = checkpoint.with_suffix(".tmp")
            torch.save({"model": model.state_dict(), "optimizer": optimizer.state_dict(),
                        "scheduler": scheduler.state_dict(), "step": step}, tmp)
            tmp.replace(checkpoint)
        on_progress(step, total, float(loss.detach()))
    final = run_dir / "model.pt"
    torch.save(model.state_dict(), final)
    return final
