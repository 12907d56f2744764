"""Training data for the faithfulness classifier, FactCC-style: the corpus's own sentences, kept or broken.

A generated sentence that cites a clause must say what the clause says. The lexical check
(answering/grounding.py) catches invented numbers well and reversed duties poorly: "由受让人书面通知公司"
reuses the clause's words and swaps who acts. A classifier that reads the clause and the sentence
together can learn those reversals from perturbations of the clauses' own sentences, labelled by how
they were made:

- faithful: the sentence as written, or lightly reworded the way answers reword statutes (a 根据规定
  lead-in, 应当 → 应, numbers as digits);
- wrong_actor: one party named in the sentence replaced by another party of the same law;
- negation: a duty turned into a permission or a prohibition (应当 ↔ 可以 ↔ 不得), or 不 inserted/removed;
- wrong_number: a number changed;
- overgeneralization: a leading condition (……的，) dropped, or 一律 inserted;
- unsupported_addition: a clause of another article appended.

The eval's grounding cases (eval/grounding_cases.jsonl) are never training data; their dev split decides
by cross-validation whether the classifier is used, and how (evaluation/grounding_eval.py).
"""

from __future__ import annotations

import random
import re
from collections.abc import Sequence
from dataclasses import dataclass

from ..answering.grounding import actors_in
from ..numerals import with_arabic_numbers

MIN_SENTENCE_CHARS = 15
"""Shorter sentences ("本法自公布之日起施行。") carry no duty, party or condition to break."""

# How answers reword statutes without changing what they say (each pair: statute wording → answer wording).
# Why a list: these are the few function words whose everyday forms LLM answers use; a faithful paraphrase
# must not be mistaken for a broken one because of them.
REWORDINGS = (("应当", "应"), ("可以", "可"), ("之日起", "日起"), ("依照", "按照"), ("予以", "给予"),
              ("不得", "不能"), ("或者", "或"), ("并且", "并"))
LEADS = ("根据规定，", "按照规定，", "依法，")
# Modalities and their reversals: a duty (应当), a permission (可以), a prohibition (不得).
MODAL_FLIPS = {"应当": ("可以", "不得"), "可以": ("应当", "不得"), "不得": ("可以", "应当"), "必须": ("可以",),
               "禁止": ("允许",), "有权": ("无权",), "无权": ("有权",)}
_NEGATABLE = re.compile("(予以|得|能|需要|需|应|可)")
_NUMBER = re.compile(r"\d+(?:\.\d+)?")
_CONDITION = re.compile(r"^[^，。；]{4,40}?的，")


@dataclass(frozen=True)
class Example:
    """One (claim, clause) pair and whether the clause supports the claim."""

    claim: str
    clause_text: str
    kind: str

    @property
    def faithful(self) -> bool:
        return self.kind == "faithful"


def reworded(sentence: str, rng: random.Random) -> str:
    """A faithful rewording: some function words in their everyday forms, maybe a lead-in, digits."""
    out = sentence
    for statute, answer in REWORDINGS:
        if statute in out and rng.random() < 0.5:
            out = out.replace(statute, answer)
    if rng.random() < 0.5:
        out = with_arabic_numbers(out)
    if rng.random() < 0.3:
        out = rng.choice(LEADS) + out
    return out


def wrong_actor(sentence: str, others: Sequence[str], rng: random.Random) -> str | None:
    named = [a for a in actors_in(sentence) if len(a) >= 2]
    candidates = [a for a in others if a not in sentence and a not in named]
    if not named or not candidates:
        return None
    return sentence.replace(rng.choice(named), rng.choice(candidates), 1)


def negated(sentence: str, rng: random.Random) -> str | None:
    modals = [m for m in MODAL_FLIPS if m in sentence]
    if modals:
        modal = rng.choice(modals)
        return sentence.replace(modal, rng.choice(MODAL_FLIPS[modal]), 1)
    if "不" in sentence:
        return sentence.replace("不", "", 1)
    match = _NEGATABLE.search(sentence)
    return sentence[: match.start()] + "不" + sentence[match.start():] if match else None


def wrong_number(sentence: str, rng: random.Random) -> str | None:
    digits = with_arabic_numbers(sentence)
    numbers = list(_NUMBER.finditer(digits))
    if not numbers:
        return None
    m = rng.choice(numbers)
    value = float(m.group(0))
    changed = value * rng.choice((2, 3, 0.5)) if value > 1 else value + rng.choice((1, 2))
    text = f"{changed:g}"
    return digits[: m.start()] + text + digits[m.end():] if text != m.group(0) else None


def overgeneralized(sentence: str, rng: random.Random) -> str | None:
    condition = _CONDITION.match(sentence)
    if condition and rng.random() < 0.7:
        return sentence[condition.end():]
    for modal in ("应当", "可以", "不得"):
        if modal in sentence:
            return sentence.replace(modal, "一律" + modal, 1)
    return None


def with_addition(sentence: str, other_sentences: Sequence[str], rng: random.Random) -> str | None:
    if not other_sentences:
        return None
    extra = rng.choice(other_sentences).rstrip("。；")
    extra = re.sub(r"^[^，]{0,12}?(应当|可以|不得)", r"并\1", extra)
    return sentence.rstrip("。；") + "，" + extra + "。"


BREAKERS = ("wrong_actor", "negation", "wrong_number", "overgeneralization", "unsupported_addition")


def examples_for(sentence: str, clause_text: str, law_actors: Sequence[str], far_sentences: Sequence[str],
                 rng: random.Random, negatives: int = 2) -> list[Example]:
    """One faithful rewording and up to `negatives` broken versions of one clause sentence."""
    out = [Example(reworded(sentence, rng), clause_text, "faithful")]
    makers = {
        "wrong_actor": lambda: wrong_actor(sentence, law_actors, rng),
        "negation": lambda: negated(sentence, rng),
        "wrong_number": lambda: wrong_number(sentence, rng),
        "overgeneralization": lambda: overgeneralized(sentence, rng),
        "unsupported_addition": lambda: with_addition(sentence, far_sentences, rng),
    }
    for kind in rng.sample(BREAKERS, len(BREAKERS)):
        if len(out) > negatives:
            break
        broken = makers[kind]()
        if broken and broken != sentence:
            out.append(Example(broken, clause_text, kind))
    return out


def corpus_examples(clauses, rng: random.Random, per_clause: int = 2) -> list[Example]:  # noqa: ANN001 - Clauses
    """Examples from up to `per_clause` sentences of every clause; parties come from the same law,
    appended content from another law (so that it is really unsupported)."""
    by_doc: dict[str, list] = {}
    for clause in clauses:
        by_doc.setdefault(clause.doc_id, []).append(clause)
    actors = {doc: sorted({a for c in cs for a in actors_in(c.text) if len(a) >= 2}) for doc, cs in by_doc.items()}
    out: list[Example] = []
    for clause in clauses:
        sentences = [s for s in clause.sentences if len(s) >= MIN_SENTENCE_CHARS]
        others = [c for c in by_doc[rng.choice([d for d in by_doc if d != clause.doc_id])]]
        far = [s for c in rng.sample(others, min(3, len(others))) for s in c.sentences if len(s) >= MIN_SENTENCE_CHARS]
        for sentence in rng.sample(sentences, min(per_clause, len(sentences))):
            out += examples_for(sentence, clause.text, actors[clause.doc_id], far, rng)
    return out
