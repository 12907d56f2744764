"""The grounding check on LLM-style paraphrases: per-label floors on the dev split, and each rule
(with its hand-written word list) shown firing where it must and staying quiet where it must not.

Only the dev split is scored here; the test split is for the final report and never sets a floor.
"""

from __future__ import annotations

import hashlib
from collections import Counter

import pytest

from assistant.answering.grounding import (
    DEFAULT_MAX_NOVEL,
    DEFAULT_NUMBER_MARGIN,
    DEFAULT_SENTENCE_BONUS,
    REASONS_ZH,
    absolutes_in,
    actors_in,
    check_answer,
    check_sentence,
    fidelity,
    is_supported,
    negated,
    numbers_in,
    split_sentences,
    verdict,
)
from assistant.evaluation.grounding_eval import LABELS, Case, Constants, load_cases, rates, select

# Public clause texts from the corpus (index/clauses.jsonl), cited as [1] in the examples below.
HUILU = ("经营者违反本法第七条规定贿赂他人的，由监督检查部门没收违法所得，处十万元以上三百万元以下的罚款。"
         "情节严重的，吊销营业执照。")  # 反不正当竞争法第十九条
JIZHONG = (
    "国务院反垄断执法机构应当自收到经营者提交的符合本法第二十八条规定的文件、资料之日起三十日内，对申报的经营者"
    "集中进行初步审查，作出是否实施进一步审查的决定，并书面通知经营者。国务院反垄断执法机构作出决定前，经营者不得"
    "实施集中。\n国务院反垄断执法机构作出不实施进一步审查的决定或者逾期未作出决定的，经营者可以实施集中。"
)  # 反垄断法第三十条
SHENCHA = (
    "起草单位起草的政策措施，没有法律、行政法规依据或者未经国务院批准，不得含有下列影响生产经营成本的内容：\n"
    "（一）给予特定经营者税收优惠；\n（二）给予特定经营者选择性、差异化的财政奖励或者补贴；\n"
    "（三）给予特定经营者要素获取、行政事业性收费、政府性基金、社会保险费等方面的优惠；\n（四）其他影响生产经营成本的内容。"
)  # 公平竞争审查条例第十条
YUETAN = ("起草单位未依照本条例规定开展公平竞争审查，经市场监督管理部门督促，逾期仍未整改的，"
          "上一级市场监督管理部门可以对其负责人进行约谈。")  # 公平竞争审查条例第二十四条
KUANXIAN = (
    "股东未按照公司章程规定的出资日期缴纳出资，公司依照前条第一款规定发出书面催缴书催缴出资的，可以载明缴纳出资的"
    "宽限期；宽限期自公司发出催缴书之日起，不得少于六十日。宽限期届满，股东仍未履行出资义务的，公司经董事会决议可以"
    "向该股东发出失权通知，通知应当以书面形式发出。自通知发出之日起，该股东丧失其未缴纳出资的股权。\n"
    "股东对失权有异议的，应当自接到失权通知之日起三十日内，向人民法院提起诉讼。"
)  # 公司法第五十二条（节选）
BUDONGCHAN = "不动产登记机构应当自受理登记申请之日起30个工作日内办结不动产登记手续，法律另有规定的除外。"
TOUSU = ("供应商捏造事实、提供虚假材料或者以非法手段取得证明材料进行投诉的，由财政部门列入不良行为记录名单，"
         "禁止其1至3年内参加政府采购活动。")  # 政府采购法实施条例第七十三条
HETONG = (
    "采购人与中标、成交供应商应当在中标、成交通知书发出之日起三十日内，按照采购文件确定的事项签订政府采购合同。\n"
    "中标、成交通知书对采购人和中标、成交供应商均具有法律效力。"
)  # 政府采购法第四十六条（节选）
POCHAN = ("人民法院受理破产申请后，管理人对破产申请受理前成立而债务人和对方当事人均未履行完毕的合同有权决定解除"
          "或者继续履行，并通知对方当事人。")  # 企业破产法第十八条（节选）
LIXI = ("机关、事业单位和大型企业迟延支付中小企业款项的，应当支付逾期利息。双方对逾期利息的利率有约定的，约定利率"
        "不得低于合同订立时1年期贷款市场报价利率；未作约定的，按照每日利率万分之五支付逾期利息。")
BAOZHENGJIN = (
    "机关、事业单位和大型企业不得将保证金限定为现金。中小企业以金融机构出具的保函等提供保证的，机关、事业单位和"
    "大型企业应当接受。\n机关、事业单位和大型企业应当依法或者按照合同约定，在保证期限届满后及时与中小企业对收取的"
    "保证金进行核算并退还。"
)  # 保障中小企业款项支付条例第十三条（节选）
FUKUAN = ("机关、事业单位从中小企业采购货物、工程、服务，应当自货物、工程、服务交付之日起30日内支付款项；"
          "合同另有约定的，从其约定，但付款期限最长不得超过60日。")


def reason(sentence: str, clause: str) -> str | None:
    """Why the check removes `sentence` citing `clause` as [1] (None: kept)."""
    return check_sentence(f"{sentence}[1]", {1: clause}).reason


# -- per-label floors on dev -----------------------------------------------------------------------

# Floors = the 5-fold cross-validated dev estimate (grounding_eval --split dev) minus a margin of 0.05,
# about one case of the smallest dev labels (22-28 cases), so a single borderline case does not fail
# the suite while a real regression does. They are not raised to the targets: where the
# estimate is below a target, the README says so, and a floor above the estimate would be fitted to dev.
CV_ESTIMATE = {"faithful": 0.854, "wrong_number": 1.000, "wrong_actor": 0.741, "negation": 0.815,
               "overgeneralization": 0.857, "unsupported_addition": 0.909}
MARGIN = 0.05
FLOORS = {label: round(CV_ESTIMATE[label] - MARGIN, 3) for label in LABELS}


@pytest.fixture(scope="module")
def dev_rates() -> dict[str, dict[str, float | int]]:
    return rates(load_cases(split="dev"), Constants())


@pytest.mark.parametrize("label", LABELS)
def test_dev_rate_meets_its_floor(dev_rates, label: str) -> None:
    assert dev_rates[label]["n"] > 0
    assert dev_rates[label]["rate"] >= FLOORS[label], (label, dev_rates[label], FLOORS[label])


@pytest.mark.slow  # cross-validates the whole grid
def test_shipped_constants_are_the_ones_chosen_on_dev() -> None:
    chosen = select(load_cases(split="dev"))
    assert (chosen.max_novel, chosen.number_margin, chosen.sentence_bonus) == (
        DEFAULT_MAX_NOVEL, DEFAULT_NUMBER_MARGIN, DEFAULT_SENTENCE_BONUS)


def _batch(case: Case) -> str:
    return "g2" if case.id.startswith("g2-") else "g1"


def test_every_case_has_a_stable_stratified_split() -> None:
    """Each batch of cases (g001…: the first, g2-…: the second, written later by other hands) is split on
    its own, so adding a batch never moves an earlier case between dev and test."""
    cases = load_cases()
    assert len(cases) == 474 and {c.split for c in cases} == {"dev", "test"}
    groups = {(_batch(c), c.label) for c in cases}
    assert {batch for batch, _ in groups} == {"g1", "g2"}
    for group in groups:
        # Within a batch and a label, cases alternate dev/test in sha256 order of their ids.
        mine = [c for c in cases if (_batch(c), c.label) == group]
        counts = Counter(c.split for c in mine)
        assert abs(counts["dev"] - counts["test"]) <= 1
        ranked = sorted(mine, key=lambda c: hashlib.sha256(c.id.encode()).hexdigest())
        assert [c.split for c in ranked] == ["dev" if i % 2 == 0 else "test" for i in range(len(ranked))]


# -- numbers: value, unit and what the number is about ----------------------------------------------


def test_a_number_the_clause_states_for_something_else_is_moved() -> None:
    # 三十日 is in the clause, but for the lawsuit deadline; the grace period is 六十日.
    assert reason("宽限期自公司发出催缴书之日起不得少于三十日。", KUANXIAN) == "number_mismatch"
    assert fidelity("宽限期自公司发出催缴书之日起不得少于三十日。", [KUANXIAN]).moved_numbers == ("30",)


def test_a_number_in_its_own_context_is_not_moved() -> None:
    assert reason("宽限期从发出催缴书之日起算，不得少于60天。", KUANXIAN) is None
    assert reason("股东对失权有异议的，应在接到失权通知后30日内向法院起诉。", KUANXIAN) is None
    assert reason("机关、事业单位一般应在交付之日起30天内付款，合同另有约定的最长也不能超过60天。", FUKUAN) is None


def test_both_ends_of_a_range_share_its_context() -> None:
    assert reason("供应商用虚假材料投诉的，由财政部门列入不良行为记录名单，1至3年内禁止参加政府采购。", TOUSU) is None


@pytest.mark.parametrize(
    ("sentence", "expected"),
    [("不动产登记机构应当自受理登记申请之日起30日内办结登记手续。", "number_mismatch"),  # 工作日 → 日
     ("不动产登记机构应在受理登记申请后30个工作日内办结登记手续。", None)],
)
def test_a_changed_unit_is_a_wrong_number(sentence: str, expected: str | None) -> None:
    # _UNIT_CLASSES: 日 and 天 are one class, 工作日 another.
    assert reason(sentence, BUDONGCHAN) == expected


def test_fractions_ending_in_zhi_yi_are_read() -> None:
    # "之一" is in _IDIOMS ("情形之一"), which used to swallow the numerator of "二分之一".
    assert numbers_in("市场份额达到二分之一的") == {"1/2"}
    assert numbers_in("有下列情形之一的") == set()


def test_di_yi_ci_is_not_a_number() -> None:
    # "第一次" (for the first time) is in _IDIOMS: an ordinal of occasions, not a quantity to check.
    assert numbers_in("第一次违法且危害后果轻微的") == set()


# -- negation --------------------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("sentence", "clause"),
    [
        ("国务院反垄断执法机构逾期未作出决定的，经营者仍不得实施集中。", JIZHONG),  # 可以 → 不得
        ("中小企业以金融机构出具的保函提供保证的，机关、事业单位和大型企业可以拒绝接受。", BAOZHENGJIN),  # 拒绝
        ("机关、事业单位和大型企业可以将保证金限定为现金。", BAOZHENGJIN),  # 不得 → 可以
        ("合同另有约定的，付款期限最长可以超过60日。", FUKUAN),  # permission to cross a bound
    ],
)
def test_a_flipped_negation_is_removed(sentence: str, clause: str) -> None:
    assert reason(sentence, clause) == "negation"


@pytest.mark.parametrize(
    ("sentence", "clause"),
    [
        ("国务院反垄断执法机构作出决定前，经营者不能实施集中。", JIZHONG),  # 不得 → 不能: same polarity
        ("合同另有约定的，付款期限最长不超过60天。", FUKUAN),  # bounds are not negations (_NOT_NEGATION)
        ("对于破产受理前成立、双方都没履行完的合同，管理人有权决定解除还是继续履行。", POCHAN),  # 没 for 未
        ("没有法律依据或未经国务院批准，政策措施不能给予特定经营者税收优惠。", SHENCHA),  # lead-in negation
        ("中小企业以金融机构出具的保函提供保证的，机关、事业单位和大型企业应当接受。", BAOZHENGJIN),
    ],
)
def test_a_kept_negation_is_not_a_flip(sentence: str, clause: str) -> None:
    assert reason(sentence, clause) is None


def test_negated_ignores_bounds_and_nouns() -> None:
    assert negated("不得超过60日") is False and negated("不动产登记") is False and negated("非法手段") is False
    assert negated("不得收取") and negated("无需公示") and negated("拒绝接受") and negated("可以超过60日")


# -- actors ----------------------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("sentence", "clause"),
    [
        ("经营者违法贿赂他人的，由人民法院没收违法所得。", HUILU),  # an actor the clause never names
        ("起草单位经督促逾期仍未整改的，本级人民政府可以约谈其负责人。", YUETAN),
        ("宽限期届满股东仍未出资的，公司经股东会决议可以向该股东发出失权通知。", KUANXIAN),  # 董事会 → 股东会
        ("宽限期届满股东仍未出资的，由监事会向该股东发出失权通知。", KUANXIAN),
    ],
)
def test_another_actor_is_removed(sentence: str, clause: str) -> None:
    assert reason(sentence, clause) == "wrong_actor"


@pytest.mark.parametrize(
    ("sentence", "clause"),
    [
        ("起草单位逾期仍未整改的，上一级市场监管部门可以约谈其负责人。", YUETAN),  # an abbreviation
        ("采购人和中标供应商应在中标通知书发出后30日内签订政府采购合同。", HETONG),  # "中标、成交供应商"
        ("经营者违反规定贿赂他人的，由监督检查部门没收违法所得。", HUILU),  # "他人" is in _NOT_ACTORS
    ],
)
def test_the_same_actor_in_other_words_is_kept(sentence: str, clause: str) -> None:
    assert reason(sentence, clause) is None


def test_actors_in_subject_position_only() -> None:
    text = "厦门鼓励银行等金融机构对小微企业减免收费，由管理人确定期限，经上级登记机关批准"
    assert actors_in(text, subjects_only=True) == ["管理人", "上级登记机关"]  # 鼓励 governs 银行 (object)
    assert "金融机构" in actors_in(text)
    assert actors_in("采购人或者采购代理机构应当公告", subjects_only=True) == ["采购人", "采购代理机构"]


# -- absolute quantifiers --------------------------------------------------------------------------


def test_an_absolute_the_clause_does_not_use_is_removed() -> None:
    assert reason("约定的逾期利息一律按照每日万分之五支付。", LIXI) == "overgeneralization"
    assert reason("机关、事业单位和大型企业在任何情况下都不得将保证金限定为现金。", BAOZHENGJIN) == "overgeneralization"
    assert absolutes_in("不存在任何例外") == ["不存在任何例外"]


def test_an_absolute_the_clause_uses_is_kept() -> None:
    clause = "任何单位不得对中小企业执行目录清单之外的行政事业性收费。"
    assert reason("任何单位都不得对中小企业执行目录清单之外的行政事业性收费。", clause) is None
    # "都" only needs some universal or distributive word in the clause (_DISTRIBUTIVE): 均 here.
    assert fidelity("双方都没履行完的合同，管理人有权决定解除或者继续履行。", [POCHAN]).absolutes == ()


# -- content of its own ----------------------------------------------------------------------------


def test_an_added_claim_is_removed() -> None:
    sentence = "保证期限届满后，大型企业应当及时核算并退还保证金，并按同期存款利率支付利息。"
    assert reason(sentence, BAOZHENGJIN) == "unsupported_content"
    assert "存款利率" in fidelity(sentence, [BAOZHENGJIN]).novel


def test_function_words_and_hedges_are_not_new_content() -> None:
    # _FUNCTION_CHARS / _FUNCTION_WORDS: "一般", "应在", "也不能", "如果……就" add no claim.
    sentence = "如果合同另有约定，付款期限一般最长也不能超过60天。"
    assert fidelity(sentence, [FUKUAN]).novel == ""
    assert reason(sentence, FUKUAN) is None


# -- the whole path --------------------------------------------------------------------------------


def test_a_phrase_matching_two_clause_phrases_equally_is_not_judged() -> None:
    # Alone, "经营者不得实施集中" is as close to "……决定前，经营者不得实施集中" as to "……逾期未作出决定的，
    # 经营者可以实施集中": with no context to choose, polarity is not held against the sentence.
    assert reason("经营者仍不得实施集中。", JIZHONG) is None


def test_every_reason_has_its_chinese_text() -> None:
    for sentence, clause in [("由人民法院没收违法所得。", HUILU),
                             ("国务院反垄断执法机构逾期未作出决定的，经营者仍不得实施集中。", JIZHONG)]:
        assert verdict(sentence, [clause]).reason in REASONS_ZH


def test_is_supported_agrees_with_check_sentence() -> None:
    for sentence in ["经营者违法贿赂他人的，由人民法院没收违法所得。", "经营者违法贿赂他人的，由监督检查部门没收违法所得。"]:
        assert is_supported(sentence, [HUILU]) == (reason(sentence, HUILU) is None)


@pytest.mark.parametrize(
    "clause", [HUILU, JIZHONG, SHENCHA, YUETAN, KUANXIAN, TOUSU, HETONG, POCHAN, LIXI, BAOZHENGJIN, FUKUAN]
)
def test_a_clause_quoted_verbatim_is_always_kept(clause: str) -> None:
    # What the extractive answers do; none of the fidelity checks may fire on the clause's own words.
    result = check_answer("".join(f"{s}[1]" for s in split_sentences(clause)), {1: clause})
    assert result.removed == []
