"""What a question asks for, and which kind of clause answers that: two pairings the ranker reads.

Real questions name a situation, and the clause that shares most words with it is often the wrong
kind: "工商局查到无证经营罚款该怎么处理" matches the articles that define 无证经营 as well as the one in
the 法律责任 chapter that sets the fine; "外资企业的法律界定是什么" matches every article about 外资企业,
and only 第二条 defines it. Two pairings say which kind is wanted:

- a question about consequences (fines, liability, sanctions) and a clause in a 法律责任/罚则 chapter;
- a question asking what a term means and a clause that defines (总则, or text with 是指/所称).

They are features, not rules: the ranker weighs them by cross-validation on dev (evaluation/tuning.py),
which supported them (weighted CV MRR@10 0.781 → 0.796, real questions 0.681 → 0.714; on the larger dev
set with 87 real questions collected afterwards, 0.770 → 0.779 and 0.667 → 0.680). Each pattern
carries examples where it must match and where it must not (tests/test_kinds.py runs them).
"""

from __future__ import annotations

import re

from ..schema import Clause
from .wording import WordingRule

CONSEQUENCE = WordingRule(
    name="consequence",
    # 违法/违规 alone are left out: "政府指定采购单位违法吗" asks whether something is lawful, and the
    # answer is the rule itself, not the penalty chapter.
    pattern=re.compile(r"罚|后果|法律责任|承担.{0,4}责任|处分|吊销|追究"),
    why="penalties and liability are set in the 法律责任 chapter, rarely where the duty itself is",
    fires_on=("工商局查到无证经营罚款该怎么处理?", "营业执照没年检罚多钱", "不按时年报有什么后果",
              "串通投标要承担什么法律责任", "虚假登记会被吊销执照吗", "违规收费的官员会被追究吗"),
    passes=("政府指定采购单位违法吗", "简易注销怎么办理", "公司变更法人时间?", "董监高有哪些义务",
            "责任编辑是谁"),
)

DEFINITION = WordingRule(
    name="definition",
    # "依据是什么"/"条件是什么" end in 是什么 too, but ask for a rule, not a meaning: only the wordings
    # that ask what a term is, means or counts as.
    pattern=re.compile(r"(^|[，,。：:])什么是|是什么意思|指的?是什么|是指什么|指什么|含义|定义|界定|(如何|怎么|怎样|的)认定"),
    why="what a term means is said in a defining clause (总则, 是指, 所称), not where the term is used",
    fires_on=("外资企业的法律界定是什么", "歇业是什么意思?", "什么是简易注销", "如何认定外资投资",
              "中小企业指的是什么", "受益所有人的定义"),
    passes=("公司简易注销的法律政策依据是什么?", "申请破产的条件是什么", "注册资本几年内缴足",
            "企业年度报告应包括哪些内容", "个体户和公司有什么区别"),
)

_LIABILITY_HEADING = re.compile(r"法律责任|罚\s*则")
_GENERAL_HEADING = re.compile(r"总\s*则")
_DEFINING_TEXT = re.compile(r"是指|所称")


def is_liability(clause: Clause) -> bool:
    """The clause sits in a chapter that sets penalties and liability."""
    return any(_LIABILITY_HEADING.search(h) for h in clause.heading_path)


def is_defining(clause: Clause) -> bool:
    """The clause says what terms mean: a general provision, or text that defines (是指, 所称)."""
    return any(_GENERAL_HEADING.search(h) for h in clause.heading_path) or bool(_DEFINING_TEXT.search(clause.text))
