"""The rate limiter's parts, in process: the setting's notation, counting per client, and who a
client is (a configured key, else the address; a made-up token is not an identity)."""

from __future__ import annotations

import pytest

from assistant.serving.ratelimit import RateLimitConfigError, RateLimiter, client_identity, parse_limit
from assistant.serving.security import ApiKeys, is_write


@pytest.mark.parametrize("text", [None, "", "off", "OFF", " none "])
def test_off_disables_a_limit(text: str | None) -> None:
    assert parse_limit(text, "X") is None


def test_limits_notation_is_parsed_and_nonsense_is_a_clear_startup_error() -> None:
    item = parse_limit("5 per 10 seconds", "X")
    assert item is not None and (item.amount, item.multiples, item.GRANULARITY.name) == (5, 10, "second")
    with pytest.raises(RateLimitConfigError, match="POLICY_QA_RATE_LIMIT_WRITES='lots' 不是有效的限流设置"):
        parse_limit("lots", "POLICY_QA_RATE_LIMIT_WRITES")


def test_each_client_has_its_own_budget_and_a_refusal_says_how_long_to_wait() -> None:
    limiter = RateLimiter(parse_limit("2/minute", "W"), None)
    assert [limiter.hit("write", "ip:a") for _ in range(2)] == [0, 0]
    wait = limiter.hit("write", "ip:a")
    assert 1 <= wait <= 60
    assert limiter.hit("write", "ip:b") == 0
    assert all(limiter.hit("read", "ip:a") == 0 for _ in range(10))  # reads are not limited here


def test_a_limiter_with_no_limits_is_off() -> None:
    assert not RateLimiter(None, None)
    assert RateLimiter(None, parse_limit("1/second", "R"))


def test_a_client_is_its_configured_key_else_its_address() -> None:
    keys = ApiKeys(["secret-1"])
    scope = {"client": ("10.0.0.7", 5000), "headers": [(b"authorization", b"Bearer secret-1")]}
    identity = client_identity(scope, keys)
    assert identity.startswith("key:") and "secret" not in identity
    made_up = {"client": ("10.0.0.7", 5000), "headers": [(b"authorization", b"Bearer rotate-me-42")]}
    assert client_identity(made_up, keys) == "ip:10.0.0.7"
    assert client_identity({"client": ("10.0.0.8", 1), "headers": []}, ApiKeys([])) == "ip:10.0.0.8"
    admin = {"client": ("10.0.0.9", 1), "headers": [(b"x-admin-token", b"op-token")]}
    assert client_identity(admin, ApiKeys(["secret-1"], admin_token="op-token")) == "admin"
    assert client_identity(admin, ApiKeys(["secret-1"])) == "ip:10.0.0.9"  # no token configured: not an identity


@pytest.mark.parametrize(("method", "path", "write"), [
    ("POST", "/api/feedback", True),
    ("POST", "/api/documents", True),   # a knowledge-base write added later is a write by default
    ("DELETE", "/api/documents/x", True),
    ("POST", "/api/ask", False),
    ("POST", "/api/ask/stream", False),
    ("POST", "/v1/chat/completions", False),
    ("GET", "/api/search", False),
])
def test_writes_are_every_change_not_the_question_posts(method: str, path: str, write: bool) -> None:
    assert is_write(method, path) is write
