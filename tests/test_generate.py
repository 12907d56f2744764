"""The generative chain with langchain-core's fake chat model standing in for the remote LLM.

Everything else is the real code: prompts from prompts/, the LCEL chain, the grounding check.
"""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path

import httpx
import openai
import pytest
from langchain_core.language_models.fake_chat_models import GenericFakeChatModel
from langchain_core.messages import BaseMessage

from assistant.answering.llm import (
    NOTICE_HTTP,
    NOTICE_REMOVED,
    NOTICE_TIMEOUT,
    NOTICE_UNGROUNDED,
    NOTICE_UNREACHABLE,
    PROMPTS_DIR,
    REDACTED_PROMPT_ECHO,
    Event,
    Generation,
    Generator,
    Prompts,
    Retrieved,
    failure_notice,
    format_context,
    llm_configured,
    make_chat_model,
)
from assistant.config import Settings
from assistant.errors import ExtraMissingError, PromptError
from assistant.schema import Citation, DocStatus, Turn

JIANYI = (
    "市场主体未发生债权债务或者已将债权债务清偿完结，未发生或者已结清清偿费用、职工工资、社会保险费用、"
    "法定补偿金、应缴纳税款（滞纳金、罚款），并由全体投资人书面承诺对上述情况的真实性承担法律责任的，"
    "可以按照简易程序办理注销登记。市场主体应当将承诺书及注销登记申请通过国家企业信用信息公示系统公示，"
    "公示期为20日。"
)
QINGSUAN = (
    "市场主体注销登记前依法应当清算的，清算组应当自成立之日起10日内将清算组成员、清算组负责人名单"
    "通过国家企业信用信息公示系统公告。"
)
GOOD_1 = "市场主体未发生债权债务的，可以按照简易程序办理注销登记[1]。"
GOOD_2 = "承诺书及注销登记申请应当通过国家企业信用信息公示系统公示，公示期为20日[1]。"
GOOD_3 = "清算组应当自成立之日起10日内公告清算组成员名单[2]。"


def citation(n: int, text: str, label: str) -> Citation:
    return Citation(
        n=n, clause_id=f"shichang-zhuti-dengji-guanli-tiaoli#{n}", doc_id="shichang-zhuti-dengji-guanli-tiaoli",
        doc_title="中华人民共和国市场主体登记管理条例", label=label, text=text, doc_number="国务院令第746号",
        effective="2022-03-01", status=DocStatus.in_force, status_zh="现行有效",
    )


CLAUSES = [citation(1, JIANYI, "第三十三条"), citation(2, QINGSUAN, "第三十二条")]


class Retriever:
    """Records the questions the chain retrieves for; answers with fixed clauses or abstains."""

    def __init__(self, abstain: bool = False) -> None:
        self.queries: list[str] = []
        self.abstain = abstain

    def __call__(self, question: str) -> Retrieved:
        self.queries.append(question)
        return Retrieved(question, [] if self.abstain else CLAUSES, self.abstain, payload="fallback")


class RaisingChatModel(GenericFakeChatModel):
    """A remote model that fails the way the OpenAI client does."""

    error: Exception

    def _generate(self, messages: list[BaseMessage], *args, **kwargs):  # type: ignore[no-untyped-def]
        raise self.error


def fake(*replies: str) -> tuple[GenericFakeChatModel, Iterator[str]]:
    """A fake chat model and the iterator of its replies (left unconsumed when it is never called)."""
    replies_iter = iter(replies)
    return GenericFakeChatModel(messages=replies_iter), replies_iter


def events(generator: Generator, question: str = "简易注销要公示多久？", retriever: Retriever | None = None,
           history: list[Turn] | None = None) -> list[Event]:
    return list(generator.run(question, retriever or Retriever(), history))


def done(evs: list[Event]) -> Generation:
    assert evs[-1].kind == "done"
    return evs[-1].data


# -- prompts ---------------------------------------------------------------------------------


def test_shipped_prompts_load_with_their_placeholders() -> None:
    prompts = Prompts.load()
    assert set(prompts.answer_prompt().input_variables) == {"context", "question"}
    assert set(prompts.condense_prompt().input_variables) == {"history", "question"}


def copy_prompts(tmp_path: Path) -> Path:
    for name in ("system", "answer", "condense"):
        (tmp_path / f"{name}.txt").write_text((PROMPTS_DIR / f"{name}.txt").read_text("utf-8"), "utf-8")
    return tmp_path


def test_a_prompt_missing_a_placeholder_fails_at_load(tmp_path: Path) -> None:
    directory = copy_prompts(tmp_path)
    (directory / "answer.txt").write_text("参考条款：{context}\n请回答。", "utf-8")
    with pytest.raises(PromptError, match=r"answer\.txt.*missing \['question'\]"):
        Prompts.load(directory)


def test_a_prompt_with_an_unknown_placeholder_fails_at_load(tmp_path: Path) -> None:
    directory = copy_prompts(tmp_path)
    (directory / "system.txt").write_text("你是{role}。", "utf-8")
    with pytest.raises(PromptError, match=r"system\.txt.*unknown \['role'\]"):
        Prompts.load(directory)


def test_a_missing_prompt_file_fails_at_load(tmp_path: Path) -> None:
    directory = copy_prompts(tmp_path)
    (directory / "condense.txt").unlink()
    with pytest.raises(PromptError, match="condense.txt"):
        Prompts.load(directory)


def test_context_numbers_each_clause_with_its_source() -> None:
    context = format_context(CLAUSES)
    assert context.startswith("[1] 《中华人民共和国市场主体登记管理条例》第三十三条（国务院令第746号，2022-03-01起施行，现行有效）\n")
    assert "\n\n[2] 《中华人民共和国市场主体登记管理条例》第三十二条" in context


# -- the model client ------------------------------------------------------------------------


def test_llm_is_configured_by_base_url() -> None:
    assert not llm_configured(Settings(_env_file=None, llm_base_url=None))
    assert llm_configured(Settings(_env_file=None, llm_base_url="http://127.0.0.1:9/v1"))


def test_chat_model_takes_the_endpoint_settings() -> None:
    settings = Settings(_env_file=None, llm_base_url="http://127.0.0.1:9/v1", llm_model="qwen2.5",
                        llm_temperature=0.3, llm_timeout_s=7.5)
    model = make_chat_model(settings)
    assert (model.openai_api_base, model.model_name, model.temperature, model.request_timeout, model.max_retries) == (
        "http://127.0.0.1:9/v1", "qwen2.5", 0.3, 7.5, 0
    )


def test_missing_extra_is_named(monkeypatch: pytest.MonkeyPatch) -> None:
    import builtins

    real_import = builtins.__import__

    def no_langchain_openai(name: str, *args, **kwargs):  # type: ignore[no-untyped-def]
        if name == "langchain_openai":
            raise ImportError("No module named 'langchain_openai'")
        return real_import(name, *args, **kwargs)

    monkeypatch.setattr(builtins, "__import__", no_langchain_openai)
    with pytest.raises(ExtraMissingError, match=r"policy-qa\[llm\]"):
        make_chat_model(Settings(_env_file=None, llm_base_url="http://127.0.0.1:9/v1"))


REQUEST = httpx.Request("POST", "http://127.0.0.1:9/v1/chat/completions")


@pytest.mark.parametrize(
    ("error", "notice"),
    [
        (openai.APITimeoutError(request=REQUEST), NOTICE_TIMEOUT),
        (openai.APIConnectionError(request=REQUEST), NOTICE_UNREACHABLE),
        (openai.InternalServerError("boom", response=httpx.Response(503, request=REQUEST), body=None),
         NOTICE_HTTP.format(status=503)),
    ],
)
def test_failure_notice_by_kind(error: Exception, notice: str) -> None:
    assert failure_notice(error) == notice


# -- the chain ------------------------------------------------------------------------------


def test_chain_output_carries_the_retrieved_clauses_with_the_answer() -> None:
    llm, _ = fake(GOOD_1)
    out = Generator(llm).chain(Retriever()).invoke({"question": "简易注销条件？", "history": []})
    assert out["answer"] == GOOD_1
    assert out["retrieved"].citations == CLAUSES
    assert out["standalone"] == "简易注销条件？"


def test_stream_sends_sources_before_any_token_and_done_last() -> None:
    llm, _ = fake(f"{GOOD_1} {GOOD_2} {GOOD_3}")
    evs = events(Generator(llm))
    kinds = [e.kind for e in evs]
    assert kinds == ["sources", "token", "token", "token", "done"]
    assert "".join(e.data for e in evs if e.kind == "token") == done(evs).text
    assert done(evs).usable and done(evs).notice() is None


def test_model_is_not_called_when_retrieval_abstains() -> None:
    llm, replies = fake("根据常识，注销很简单[1]。")
    evs = events(Generator(llm), retriever=Retriever(abstain=True))
    assert [e.kind for e in evs] == ["sources", "done"]
    assert not done(evs).llm_called and done(evs).raw == ""
    assert next(replies) == "根据常识，注销很简单[1]。"  # still unread: the model was never asked


def test_invented_number_is_removed_and_never_streamed() -> None:
    invented = "逾期未公示的处八十八万元罚款[1]。"
    llm, _ = fake(f"{GOOD_1} {invented} {GOOD_2}")
    evs = events(Generator(llm))
    streamed = "".join(e.data for e in evs if e.kind == "token")
    result = done(evs)
    assert "八十八万" not in streamed and "八十八万" not in result.text
    assert [(s.reason, s.missing_numbers) for s in result.removed] == [("invented_number", ("880000",))]
    assert result.usable and result.notice() == NOTICE_REMOVED.format(count=1)


def test_out_of_range_markers_are_dropped() -> None:
    llm, _ = fake(f"{GOOD_1} 另有专门规定[7]。 市场主体可以按照简易程序办理注销登记[1][9]。")
    result = done(events(Generator(llm)))
    assert "[7]" not in result.text and "[9]" not in result.text
    assert result.grounding.report()["removed"][0]["reason"] == "invalid_citation"
    assert result.kept[-1].cited == (1,) and result.kept[-1].invalid_markers == (9,)


def test_unsupported_sentence_is_removed() -> None:
    llm, _ = fake(f"{GOOD_1} {GOOD_2} 外地企业还能额外申请专项财政补贴和银行贷款贴息支持[1]。")
    result = done(events(Generator(llm)))
    assert [s.reason for s in result.removed] == ["low_support"]
    assert len(result.kept) == 2


def test_too_little_left_is_not_usable() -> None:
    llm, _ = fake(f"{GOOD_1} 企业无需提交任何材料即可当场办结[1]。 外地企业还能额外申请专项补贴[2]。")
    result = done(events(Generator(llm)))
    assert len(result.kept) == 1 and not result.usable
    assert result.notice() == NOTICE_UNGROUNDED


def test_markers_after_the_full_stop_and_split_across_chunks_stay_with_their_sentence() -> None:
    # The fake model streams word by word, so "[ 1 ]" arrives as "[", "1", "]" after the full stop.
    llm, _ = fake("市场主体未发生债权债务的，可以按照简易程序办理注销登记。 [ 1 ] 公示期为20日。 [1]")
    result = done(events(Generator(llm)))
    assert result.removed == []
    assert result.text == "市场主体未发生债权债务的，可以按照简易程序办理注销登记[1]。公示期为20日[1]。"


def test_prompt_echo_is_not_reported_back() -> None:
    prompts = Prompts.load()
    llm, _ = fake(prompts.system.replace("\n", " "))
    result = done(events(Generator(llm, prompts)))
    assert not result.usable
    assert result.removed and all(s.text == REDACTED_PROMPT_ECHO for s in result.removed if len(s.text) > 12)
    assert "厦门市营商环境政策问答助手" not in str(result.grounding.report())


# -- follow-ups -----------------------------------------------------------------------------


def test_follow_up_is_condensed_before_retrieval() -> None:
    llm, _ = fake("个体工商户简易注销需要公示多久？", GOOD_2)
    retriever = Retriever()
    history = [Turn(role="user", content="个体工商户怎么简易注销？"), Turn(role="assistant", content="可以……[1]。")]
    result = done(events(Generator(llm), "那要公示多久？", retriever, history))
    assert retriever.queries == ["个体工商户简易注销需要公示多久？"]
    assert result.standalone == "个体工商户简易注销需要公示多久？" and result.usable


def test_without_history_there_is_no_condensation_call() -> None:
    llm, replies = fake(GOOD_1, "unused")
    retriever = Retriever()
    events(Generator(llm), "简易注销条件？", retriever)
    assert retriever.queries == ["简易注销条件？"]
    assert next(replies) == "unused"


def test_an_overlong_condensation_is_ignored() -> None:
    llm, _ = fake("问" * 600, GOOD_1)
    retriever = Retriever()
    history = [Turn(role="user", content="简易注销条件？")]
    events(Generator(llm), "那要多久？", retriever, history)
    assert retriever.queries == ["那要多久？"]


# -- failures -------------------------------------------------------------------------------


def test_model_failure_after_retrieval_reports_a_notice() -> None:
    llm = RaisingChatModel(messages=iter([]), error=openai.APIConnectionError(request=REQUEST))
    evs = events(Generator(llm))
    assert [e.kind for e in evs] == ["sources", "done"]
    assert done(evs).error == NOTICE_UNREACHABLE and not done(evs).usable


def test_condensation_failure_ends_before_retrieval() -> None:
    llm = RaisingChatModel(messages=iter([]), error=openai.APITimeoutError(request=REQUEST))
    retriever = Retriever()
    evs = events(Generator(llm), "那要多久？", retriever, [Turn(role="user", content="简易注销条件？")])
    assert [e.kind for e in evs] == ["done"]
    assert done(evs).retrieved is None and done(evs).error == NOTICE_TIMEOUT
    assert retriever.queries == []


def test_errors_of_our_own_retrieval_are_not_disguised_as_model_failures() -> None:
    llm, _ = fake(GOOD_1)

    def broken(question: str) -> Retrieved:
        raise KeyError("index corrupted")

    with pytest.raises(KeyError):
        events(Generator(llm), retriever=broken)  # type: ignore[arg-type]
