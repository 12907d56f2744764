"""The feedback store's own limits, in process: a size cap on every record (whoever writes it), a
storage failure raised as one error type with a Chinese reason, and a health check that writes nothing.
The HTTP side (413, 503, /healthz) is tested against a live server in test_api_access.py."""

from __future__ import annotations

from pathlib import Path

import pytest

from assistant.serving.feedback import FeedbackStorageError, FeedbackStore, FeedbackTooLargeError


def test_a_record_over_the_cap_is_refused_and_nothing_is_written(tmp_path: Path) -> None:
    store = FeedbackStore(tmp_path / "feedback.jsonl", max_record_bytes=2048)
    store.add("like", "简易注销怎么办理？", "短答案")
    size = store.path.stat().st_size
    with pytest.raises(FeedbackTooLargeError, match="每条最多 2 KB"):
        store.add("like", "简易注销怎么办理？", "长" * 1000)  # 3,000 bytes of UTF-8 in the answer alone
    with pytest.raises(FeedbackTooLargeError):
        store.add_reason("some-id", "因" * 1000)
    assert store.path.stat().st_size == size
    assert len(store.list()) == 1


@pytest.mark.parametrize(("layout", "reason"), [
    ("directory", "反馈存储路径是一个目录"),
    ("under-a-file", "反馈存储路径的上级不是目录"),
])
def test_unwritable_storage_is_one_error_with_a_reason_and_no_path(tmp_path: Path, layout: str, reason: str) -> None:
    if layout == "directory":
        path = tmp_path / "feedback.jsonl"
        path.mkdir()
    else:
        (tmp_path / "plain-file").write_text("x")
        path = tmp_path / "plain-file" / "feedback.jsonl"
    store = FeedbackStore(path)
    with pytest.raises(FeedbackStorageError) as caught:
        store.add("dislike", "问题", "答案")
    assert caught.value.strerror == reason and str(tmp_path) not in caught.value.strerror
    health = store.health()
    assert health.writable is False and health.detail and str(tmp_path) not in health.detail


def test_health_of_a_new_store_creates_nothing(tmp_path: Path) -> None:
    store = FeedbackStore(tmp_path / "not-yet" / "feedback.jsonl")
    assert store.health().writable is True
    assert not (tmp_path / "not-yet").exists()
    store.add("like", "问题", "答案")
    assert store.health().writable is True
