"""Every scope rule on the examples it carries: where it must fire and where it must not."""

from __future__ import annotations

import pytest

from assistant.answering.scope_rules import FOLLOW_UP, RULES, declining_rule

FIRES = [(rule.name, q) for rule in RULES for q in rule.fires_on]
PASSES = [(rule.name, q) for rule in RULES for q in rule.passes]


@pytest.mark.parametrize(("name", "question"), FIRES)
def test_rule_fires_on_its_examples(name: str, question: str) -> None:
    rule = declining_rule(question)
    assert rule is not None and rule.name == name


@pytest.mark.parametrize(("name", "question"), PASSES)
def test_no_rule_fires_on_legitimate_questions(name: str, question: str) -> None:
    assert declining_rule(question) is None, f"{declining_rule(question).name} declined {question!r}"


@pytest.mark.parametrize("question", FOLLOW_UP.fires_on)
def test_follow_ups_are_recognised(question: str) -> None:
    assert FOLLOW_UP.pattern.search(question)


@pytest.mark.parametrize("question", FOLLOW_UP.passes)
def test_standalone_questions_are_not_follow_ups(question: str) -> None:
    assert not FOLLOW_UP.pattern.search(question)


def test_every_rule_has_examples_on_both_sides() -> None:
    for rule in RULES:
        assert len(rule.fires_on) >= 3 and len(rule.passes) >= 3 and rule.why
