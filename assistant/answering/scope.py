"""Deciding that the corpus does not answer a question.

e5 cosines sit between 0.7 and 1.0 for everything, so no raw cosine threshold separates in-scope from
out-of-scope questions. The decision combines signals that do separate, in a logistic model whose
weights are fitted on the dev split (`policy-qa eval --calibrate`) and committed in abstention.json:

- coverage: the share of the question's content words, weighted by how specific each is to the corpus
  (idf over clauses), found in the top clauses' text;
- unknown: the idf-weighted share of its content words that occur nowhere in the corpus;
- the best BM25 clause score (log-scaled); the best dense score and its margin over the background
  (a cosine is one input among several here, never a threshold on its own);

plus rules for what is never in scope: instructions aimed at the assistant, small talk, other places.
"""

from __future__ import annotations

import json
import math
import re
from dataclasses import dataclass
from functools import lru_cache
from pathlib import Path

from ..errors import PolicyQAError
from ..text import content_words

CALIBRATION_FILE = Path(__file__).with_name("abstention.json")
FEATURES = ("coverage", "unknown", "bm25_log", "dense_top", "dense_margin")

_INSTRUCTION = re.compile(
    r"(忽略|无视|忘记|忘掉).{0,8}(指令|指示|规则|提示|设定|要求|限制)|系统提示|提示词|system\s*prompt|prompt"
    r"|你现在是|你是一个|扮演|角色扮演|假装你|越狱|jailbreak|DAN模式|开发者模式|输出你的(指令|设定|规则)",
    re.IGNORECASE,
)
_SMALL_TALK = re.compile(
    r"^(你好|您好|哈喽|hello|hi|在吗|谢谢|再见|早上好|晚上好)[啊呀！!。,，？?]*$|讲个笑话|说个笑话|你是谁|你叫什么"
    r"|写(一)?首诗|唱(一)?首歌|天气|星座|股票推荐|彩票|菜谱|做饭",
    re.IGNORECASE,
)
# Places whose own policies the corpus does not hold (Xiamen's plan and national law are in scope).
_OTHER_PLACES = re.compile(
    r"北京|上海|天津|重庆|深圳|广州|杭州|南京|苏州|成都|武汉|西安|长沙|郑州|青岛|济南|宁波|无锡|合肥|东莞|佛山"
    r"|福州|泉州|漳州|莆田|宁德|三明|南平|龙岩|香港|澳门|台北|海南|浙江|江苏|广东|山东|四川|湖北|湖南|河南|河北"
)


@dataclass(frozen=True)
class Signals:
    coverage: float
    unknown: float
    bm25_log: float
    dense_top: float
    dense_margin: float

    def vector(self) -> list[float]:
        return [getattr(self, name) for name in FEATURES]


@dataclass(frozen=True)
class Calibration:
    weights: tuple[float, ...]
    bias: float

    def probability_in_scope(self, signals: Signals) -> float:
        z = self.bias + sum(w * x for w, x in zip(self.weights, signals.vector()))
        return 1.0 / (1.0 + math.exp(-z))

    @classmethod
    def load(cls, path: Path = CALIBRATION_FILE) -> Calibration:
        try:
            data = json.loads(path.read_text(encoding="utf-8"))
            return cls(weights=tuple(float(data["weights"][name]) for name in FEATURES), bias=float(data["bias"]))
        except (OSError, ValueError, KeyError, TypeError) as exc:
            raise PolicyQAError(
                f"the abstention model {path} is missing or does not match the features {FEATURES} ({exc!r}): "
                "run `policy-qa eval --calibrate`"
            ) from None

    def save(self, path: Path = CALIBRATION_FILE, **extra: object) -> None:
        data = {"weights": dict(zip(FEATURES, self.weights)), "bias": self.bias, **extra}
        path.write_text(json.dumps(data, ensure_ascii=False, indent=1) + "\n", encoding="utf-8")


def rule_out_of_scope(question: str) -> str | None:
    """A reason when the question is out of scope whatever retrieval finds, else None."""
    if _INSTRUCTION.search(question):
        return "instruction"
    if _SMALL_TALK.search(question):
        return "small_talk"
    if _OTHER_PLACES.search(question) and "厦门" not in question:
        return "other_place"
    if not content_words(question):
        return "no_content"
    return None


class WordStats:
    """How specific each question word is to the corpus: words that occur in few clauses weigh more.

    A question about 厦门人才公寓 shares 厦门 and 申请 with hundreds of clauses; weighting coverage by
    inverse clause frequency lets the one word the corpus lacks (公寓) count for what it is.
    """

    def __init__(self, clause_texts: list[str], policy_terms: list[str]) -> None:
        self._texts = clause_texts
        self._max_idf = math.log(len(clause_texts) + 1)
        # Long quoted plan terms (“同线同标同质”) are unambiguous: a question naming one is in scope.
        self.policy_terms = [t for t in policy_terms if len(t) >= 4]

    @lru_cache(maxsize=8192)
    def idf(self, word: str) -> float:
        frequency = sum(1 for text in self._texts if word in text)
        return math.log((len(self._texts) + 1) / (frequency + 1)) if frequency else self._max_idf

    def coverage(self, question: str, text: str) -> float:
        """Share of the question's word weight (idf) that occurs in `text`."""
        words = content_words(question)
        total = sum(self.idf(w) for w in words)
        return sum(self.idf(w) for w in words if w in text) / total if total else 0.0

    def unknown(self, question: str) -> float:
        """Share of the question's word weight that occurs nowhere in the corpus."""
        words = content_words(question)
        total = sum(self.idf(w) for w in words)
        return sum(self.idf(w) for w in words if self.idf(w) == self._max_idf) / total if total else 1.0

    def names_policy_term(self, question: str) -> bool:
        return any(term in question for term in self.policy_terms)


def fit_logistic(rows: list[list[float]], labels: list[int], steps: int = 3000, lr: float = 0.3,
                 l2: float = 1e-2) -> Calibration:
    """Class-balanced logistic regression by gradient descent on standardised features.

    A handful of features and a few hundred rows need nothing more; standardising lets a feature with a
    narrow range (a cosine between 0.83 and 0.95) weigh in, and the weights are mapped back to raw units.
    """
    import numpy as np

    x = np.asarray(rows, dtype=float)
    y = np.asarray(labels, dtype=float)
    mean, std = x.mean(axis=0), x.std(axis=0) + 1e-9
    z = (x - mean) / std
    sample_weight = np.where(y == 1, 0.5 / max(y.mean(), 1e-9), 0.5 / max(1 - y.mean(), 1e-9))
    w, b = np.zeros(x.shape[1]), 0.0
    for _ in range(steps):
        p = 1.0 / (1.0 + np.exp(-(z @ w + b)))
        grad = (p - y) * sample_weight
        w -= lr * (z.T @ grad / len(y) + l2 * w)
        b -= lr * grad.mean()
    raw_w = w / std
    return Calibration(weights=tuple(float(v) for v in raw_w), bias=float(b - (raw_w * mean).sum()))
