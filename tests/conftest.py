"""Shared fixtures: isolated settings, and one real index per test session."""

from __future__ import annotations

import os
from pathlib import Path

import pytest

from assistant.config import PROJECT_ROOT, Settings, get_settings
from assistant.errors import IndexError_

# Before any test module imports transformers (collection imports them), so huggingface_hub reads it.
os.environ["HF_HUB_OFFLINE"] = "1"


@pytest.fixture(autouse=True)
def isolated_environment(monkeypatch: pytest.MonkeyPatch) -> None:
    """No POLICY_QA_* variable or .env from the developer's shell reaches a test."""
    for name in list(os.environ):
        if name.startswith("POLICY_QA_"):
            monkeypatch.delenv(name)
    monkeypatch.setenv("HF_HUB_OFFLINE", "1")
    get_settings.cache_clear()


def project_settings(**overrides: object) -> Settings:
    return Settings(_env_file=None, **overrides)


@pytest.fixture(scope="session")
def index_settings(tmp_path_factory: pytest.TempPathFactory) -> Settings:
    """Settings whose index is current: the project's `index/` when it loads (README's test command
    builds it first), else one built here once for the session."""
    settings = project_settings()
    try:
        from assistant.knowledge.store import load_index

        load_index(settings)
        return settings
    except IndexError_:
        from assistant.knowledge.embeddings import load_embeddings
        from assistant.knowledge.store import build_index

        built = project_settings(index_dir=tmp_path_factory.mktemp("session") / "index")
        build_index(built, load_embeddings(built.embedding_model), progress=False)
        return built


@pytest.fixture(scope="session")
def assistant(index_settings: Settings):  # noqa: ANN201
    from assistant.service import Assistant

    return Assistant.load(index_settings)


@pytest.fixture(scope="session")
def live_server(index_settings: Settings, tmp_path_factory: pytest.TempPathFactory):  # noqa: ANN201
    """One real `policy-qa serve` (uvicorn, API + UI) on 127.0.0.1 over the session index."""
    import json

    from live_server import CORS_TEST_ORIGIN, LiveServer

    server = LiveServer(tmp_path_factory.mktemp("serve"), index_settings.index_dir,
                        POLICY_QA_CORS_ORIGINS=json.dumps([CORS_TEST_ORIGIN])).start()
    yield server
    server.stop()


CORPUS_DIR: Path = PROJECT_ROOT / "corpus"


# Fixtures that mean a test needs the built index, a server or a browser: everything else is the fast tier.
SLOW_FIXTURES = frozenset({"index_settings", "live_server", "server", "browser", "page", "desktop", "phone"})


def pytest_collection_modifyitems(items: list[pytest.Item]) -> None:
    """Mark the fast tier (`pytest -m fast`: no index, no server, no browser; under a minute) by what each
    test asks for, so that a new test lands in the right tier without anyone remembering to mark it."""
    for item in items:
        names = set(getattr(item, "fixturenames", ()))
        if not names & SLOW_FIXTURES and item.get_closest_marker("slow") is None:
            item.add_marker(pytest.mark.fast)
