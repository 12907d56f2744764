"""How well the grounding check separates faithful paraphrases from unfaithful ones, per kind of error.

Why: in generative mode every sentence the check keeps reaches the user and every one it removes is
lost (and too many removals send the answer back to the extractive fallback). The issue's targets
are per label: keep >= 90% of faithful paraphrases, remove >= 95% of wrong numbers and >= 80% of each
other unfaithful kind. eval/grounding_cases.jsonl holds such sentences written the way an LLM writes,
each with the clause it cites, split 50/50 into dev and test (stable, by sha256 of the id, stratified
by label).

Each case is judged by the very function the answer path uses: `check_sentence` on the sentence
citing [1], with `citation_texts({1: clause_text})` as what [1] may rely on. Besides the rates with the
shipped constants, the dev split gets a cross-validated estimate for the constants that were tuned
(`max_novel`, `number_margin`, `sentence_bonus`): 5 folds grouped by clause, constants chosen on
four folds from GRID, rates counted on the fifth, pooled. The test split is only ever scored with the
shipped constants.

    .venv/bin/python -m assistant.evaluation.grounding_eval --split dev
"""

from __future__ import annotations

import argparse
import hashlib
import itertools
import json
from collections.abc import Sequence
from dataclasses import asdict, dataclass
from functools import cache
from pathlib import Path
from typing import Literal

from ..answering.grounding import (
    DEFAULT_MAX_NOVEL,
    DEFAULT_MIN_SUPPORT,
    DEFAULT_NUMBER_MARGIN,
    DEFAULT_SENTENCE_BONUS,
    check_sentence,
    citation_texts,
)
from ..config import data_dir

CASES = data_dir("eval") / "grounding_cases.jsonl"
RESULTS = Path("eval") / "results"  # beside where it runs, as `policy-qa eval --out` writes
Split = Literal["dev", "test", "all"]
LABELS = ("faithful", "wrong_number", "wrong_actor", "negation", "overgeneralization", "unsupported_addition")
TARGETS: dict[str, float] = {
    "faithful": 0.90, "wrong_number": 0.95, "wrong_actor": 0.80, "negation": 0.80,
    "overgeneralization": 0.80, "unsupported_addition": 0.80,
}
"""The issue's floor per label: share kept for faithful cases, share removed for every other label."""


@dataclass(frozen=True)
class Constants:
    """The tunable constants of the check (defaults: what grounding.py ships)."""

    min_support: float = DEFAULT_MIN_SUPPORT
    max_novel: int = DEFAULT_MAX_NOVEL
    number_margin: int = DEFAULT_NUMBER_MARGIN
    sentence_bonus: int = DEFAULT_SENTENCE_BONUS


GRID: tuple[Constants, ...] = tuple(
    Constants(DEFAULT_MIN_SUPPORT, n, m, b)
    for n, m, b in itertools.product((3, 4, 5, 6, 7, 8), (1, 2, 3), (0, 1, 2, 3, 4))
)
"""What cross-validation chooses from. `min_support` stays at its shipped value: it also scores the
extractive answers' ALCE citation metrics and the answer path's `low_support` verdict that callers
rely on, so it is not refitted to these cases."""


@dataclass(frozen=True)
class Case:
    id: str
    split: str
    clause_id: str
    clause_text: str
    sentence: str
    label: str
    note: str = ""


def load_cases(path: Path = CASES, split: Split = "all") -> list[Case]:
    cases = [Case(**json.loads(line)) for line in path.read_text("utf-8").splitlines() if line.strip()]
    return [c for c in cases if split == "all" or c.split == split]


Table = dict[str, dict[str, float | int]]
"""label → {"n", "kept", "removed", "rate"}; `rate` is the kept share for faithful, the removed share otherwise."""


@cache
def _removed(case: Case, constants: Constants) -> str | None:
    """The reason the check removes the case's sentence, or None when it keeps it."""
    check = check_sentence(
        f"{case.sentence}[1]", citation_texts({1: case.clause_text}), constants.min_support,
        max_novel=constants.max_novel, number_margin=constants.number_margin,
        sentence_bonus=constants.sentence_bonus,
    )
    return check.reason


def _tally(judged: Sequence[tuple[Case, Constants]]) -> Table:
    out: Table = {}
    for label in LABELS:
        mine = [(case, constants) for case, constants in judged if case.label == label]
        removed = sum(_removed(case, constants) is not None for case, constants in mine)
        good = len(mine) - removed if label == "faithful" else removed
        out[label] = {"n": len(mine), "kept": len(mine) - removed, "removed": removed,
                      "rate": round(good / len(mine), 4) if mine else 0.0}
    return out


def rates(cases: Sequence[Case], constants: Constants) -> Table:
    """Per-label rates of the check with `constants` on `cases`."""
    return _tally([(case, constants) for case in cases])


def objective(table: Table) -> tuple[float, float]:
    """Worst slack against the targets first (every label must clear its floor), then the mean rate."""
    present = [label for label in LABELS if table[label]["n"]]
    slack = min(float(table[label]["rate"]) - TARGETS[label] for label in present)
    return round(slack, 6), round(sum(float(table[label]["rate"]) for label in present) / len(present), 6)


def select(cases: Sequence[Case], grid: Sequence[Constants] = GRID) -> Constants:
    """The constants of `grid` with the best `objective` on `cases` (first in grid order on ties)."""
    return max(grid, key=lambda constants: objective(rates(cases, constants)))


def folds(cases: Sequence[Case], k: int = 5) -> list[list[Case]]:
    """k folds grouped by clause (a clause's cases stay together), assigned by sha256 rank of clause id."""
    clauses = sorted({c.clause_id for c in cases}, key=lambda cid: hashlib.sha256(cid.encode()).hexdigest())
    fold_of = {cid: i % k for i, cid in enumerate(clauses)}
    return [[c for c in cases if fold_of[c.clause_id] == i] for i in range(k)]


def cross_validate(
    cases: Sequence[Case], k: int = 5, grid: Sequence[Constants] = GRID
) -> tuple[Table, list[Constants]]:
    """Pooled held-out rates when the constants are chosen on the other k-1 folds each time, and the
    constants chosen for each fold."""
    held_out: list[tuple[Case, Constants]] = []
    chosen: list[Constants] = []
    parts = folds(cases, k)
    for i, fold in enumerate(parts):
        constants = select([c for j, part in enumerate(parts) if j != i for c in part], grid)
        chosen.append(constants)
        held_out.extend((case, constants) for case in fold)
    return _tally(held_out), chosen


def markdown(columns: dict[str, Table]) -> str:
    """One row per label, one column per result set, each cell "rate (n)"; the target alongside."""
    names = list(columns)
    lines = ["| label | measured as | target | " + " | ".join(names) + " |",
             "|---|---|---|" + "---|" * len(names)]
    for label in LABELS:
        what = "kept" if label == "faithful" else "removed"
        cells = [f"{float(columns[name][label]['rate']):.1%} ({columns[name][label]['n']})" for name in names]
        lines.append(f"| {label} | {what} | {TARGETS[label]:.0%} | " + " | ".join(cells) + " |")
    return "\n".join(lines)


def evaluate(split: Split, k: int = 5, path: Path = CASES) -> tuple[dict[str, object], dict[str, Table]]:
    """The JSON report and the markdown columns: rates with the shipped constants on `split`, plus the
    cross-validated estimate (and the constants chosen on all of dev) when `split` is dev."""
    cases = load_cases(path, split)
    shipped = Constants()
    measured = rates(cases, shipped)
    columns = {f"{split}, shipped constants": measured}
    report: dict[str, object] = {"split": split, "cases": len(cases), "targets": TARGETS,
                                 "shipped": {"constants": asdict(shipped), "rates": measured}}
    if split == "dev" and k > 1:
        table, chosen = cross_validate(cases, k)
        columns[f"dev, {k}-fold CV"] = table
        report["cross_validated"] = {"folds": k, "chosen": [asdict(c) for c in chosen], "rates": table}
        report["selected_on_all_dev"] = asdict(select(cases))
    return report, columns


def main(argv: Sequence[str] | None = None) -> None:
    parser = argparse.ArgumentParser(description=(__doc__ or "").splitlines()[0])
    parser.add_argument("--split", choices=("dev", "test", "all"), default="dev")
    parser.add_argument("--folds", type=int, default=5, help="cross-validation folds on dev (0 = none)")
    parser.add_argument("--cases", type=Path, default=CASES)
    parser.add_argument("--out", type=Path, default=None,
                        help="JSON path (default eval/results/grounding-<split>.json)")
    args = parser.parse_args(argv)
    report, columns = evaluate(args.split, args.folds, args.cases)
    print(markdown(columns))
    cv = report.get("cross_validated")
    if isinstance(cv, dict):
        print(f"\nconstants chosen per fold: {cv['chosen']}")
        print(f"chosen on all of dev: {report['selected_on_all_dev']}")
    print(f"shipped: {asdict(Constants())}")
    out = args.out or RESULTS / f"grounding-{args.split}.json"
    out.parent.mkdir(parents=True, exist_ok=True)
    out.write_text(json.dumps(report, ensure_ascii=False, indent=2) + "\n", "utf-8")
    print(f"\nwrote {out}")


if __name__ == "__main__":
    main()
