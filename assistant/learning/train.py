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
        width = max(map(len, ids))
        mask = np.zeros((len(ids), width), dtype=np.int64)
        flat = np.full((len(ids), width), self.tokenizer.pad, dtype=np.int64)
        for row, seq in enumerate(ids):
            flat[row, : len(seq)] = seq
            mask[row, : len(seq)] = 1
        emb = self.e5.word_embeddings(flat.reshape(-1)).reshape(len(ids), width, -1)
        return (emb * mask[..., None].astype(np.float32)).astype(np.float32), mask


def save_groups(path: Path, groups: list[Group]) -> None:
    with path.open("w", encoding="utf-8") as out:
        for group in groups:
            out.write(json.dumps(asdict(group), ensure_ascii=False) + "\n")


def load_groups(path: Path) -> list[Group]:
    return [Group(**json.loads(line)) for line in path.read_text("utf-8").splitlines() if line]


def epoch_plan(groups: list[Group], config: TrainConfig, rng: random.Random) -> list[int]:
    """Group indices for one epoch: every group once, mined and operator groups `mined_repeat` times."""
    order = [i for i, g in enumerate(groups) for _ in range(config.mined_repeat if g.kind in ("mined", "operator") else 1)]
    rng.shuffle(order)
    return order


def train(run_dir: Path, groups: list[Group], texts: list[str], config: TrainConfig,
          on_progress: Callable[[int, int, float], None] = lambda *_: None) -> Path:
    """Train (or resume) in `run_dir`; returns the final weights file. `texts[i]` is clause i's input."""
    import torch

    torch.set_num_threads(config.threads)
    torch.manual_seed(config.seed)
    e5 = E5File()
    model = build_model(config, e5)
    encoder = PairEncoder(e5, config.max_len, config.max_query_tokens)
    head_params = list(model.head.parameters())
    optimizer = torch.optim.AdamW([
        {"params": [p for n, p in model.named_parameters() if not n.startswith("head.")], "lr": config.lr},
        {"params": head_params, "lr": config.head_lr},
    ], weight_decay=0.01)
    steps_per_epoch = math.ceil(len(epoch_plan(groups, config, random.Random(0))) / config.groups_per_step)
    total = max(1, int(steps_per_epoch * config.epochs))
    warmup = max(1, int(total * config.warmup))
    scheduler = torch.optim.lr_scheduler.LambdaLR(
        optimizer, lambda s: min(1.0, (s + 1) / warmup) * max(0.0, (total - s) / max(1, total - warmup)))

    checkpoint = run_dir / "checkpoint.pt"
    step = 0
    if checkpoint.is_file():
        state = torch.load(checkpoint, weights_only=True)
        model.load_state_dict(state["model"])
        optimizer.load_state_dict(state["optimizer"])
        scheduler.load_state_dict(state["scheduler"])
        step = int(state["step"])
        logger.info("resumed at step %d of %d", step, total)

    def save() -> None:
        tmp = checkpoint.with_suffix(".tmp")
        torch.save({"model": model.state_dict(), "optimizer": optimizer.state_dict(),
                    "scheduler": scheduler.state_dict(), "step": step}, tmp)
        tmp.replace(checkpoint)

    plans: dict[int, list[int]] = {}
    log = (run_dir / "log.jsonl").open("a", encoding="utf-8")
    model.train()
    started, recent = time.perf_counter(), []
    while step < total:
        epoch, within = divmod(step, steps_per_epoch)
        if epoch not in plans:  # each epoch's order depends on the seed and the epoch only: resumable
            plans = {epoch: epoch_plan(groups, config, random.Random(config.seed * 1000 + epoch))}
        batch_groups = plans[epoch][within * config.groups_per_step : (within + 1) * config.groups_per_step]
        if not batch_groups:
            step += 1
            continue
        rng = random.Random(config.seed * 7_919 + step)
        pairs, sizes, has_positive = [], [], []
        for g in (groups[i] for i in batch_groups):
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
        loss = config.pointwise * pointwise + (torch.stack(listwise).mean() if listwise else 0.0)
        optimizer.zero_grad()
        loss.backward()
        torch.nn.utils.clip_grad_norm_(model.parameters(), 1.0)
        optimizer.step()
        scheduler.step()
        step += 1
        recent.append(float(loss.detach()))
        if step % 20 == 0 or step == total:
            mean = sum(recent) / len(recent)
            log.write(json.dumps({"step": step, "total": total, "loss": round(mean, 4),
                                  "seconds": round(time.perf_counter() - started, 1)}) + "\n")
            log.flush()
            on_progress(step, total, mean)
            recent = []
        if step % config.checkpoint_every == 0 or step == total:
            save()
    final = run_dir / "model.pt"
    torch.save(model.state_dict(), final)
    return final
