"""The OpenAPI contract against the live server: schemathesis generates requests from the schema
(valid and invalid ones) for every operation, sends them to a real `policy-qa serve` on 127.0.0.1,
and checks each answer: no 5xx, a documented status, content type and headers, a body (or SSE event)
that matches the documented schema, and a 4xx for every request the schema does not allow.

One check is left out: `positive_data_acceptance` (every schema-valid request succeeds). Some refusals
depend on data no static schema can state (a `doc` id that is not in the index, a conversation whose
last message is not the user's, a question that is only control characters once cleaned); they are
documented 422s with their own tests in test_api_server.py.

The schema is the app's own (`create_app().openapi()`, what the server publishes at /openapi.json:
a test below checks they are the same), loaded at collection time because schemathesis's lazy
fixture loader does not work with pytest 9. Bounded (a few examples per operation) so it runs
offline in well under a minute on 2 cores.
"""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path

import httpx
import pytest

schemathesis = pytest.importorskip("schemathesis")
from hypothesis import HealthCheck, settings  # noqa: E402  (installed with schemathesis)
from live_server import LiveServer  # noqa: E402
from schemathesis.checks import positive_data_acceptance  # noqa: E402
from schemathesis.config import SchemathesisConfig  # noqa: E402

from assistant.config import Settings  # noqa: E402
from assistant.serving.api import create_app  # noqa: E402

# Enough to reach each operation's documented statuses; every ask costs tens of milliseconds.
EXAMPLES_PER_OPERATION = 12

# Default settings, as the session server runs (nothing here is loaded or written: only the schema).
SPEC = create_app(Settings(_env_file=None, index_dir=Path("/nonexistent"), feedback_path=Path("/nonexistent"),
                          db_path=Path("/nonexistent"))).openapi()
# A schema-violating request must be refused: schemathesis's list of refusals, plus 413, what a body
# over the size limit gets (the generator builds deep, wide bodies).
REFUSALS = [400, 401, 403, 404, 405, 406, 409, 413, 415, 422, 428, 429, "5xx"]
CONFIG = SchemathesisConfig.from_dict({"checks": {"negative_data_rejection": {"expected-statuses": REFUSALS}}})
schema = schemathesis.openapi.from_dict(SPEC, config=CONFIG)


@pytest.fixture(scope="module")
def server(index_settings: Settings, tmp_path_factory: pytest.TempPathFactory) -> Iterator[LiveServer]:
    """Its own server: the generated feedback must neither use up the session server's write budget
    (other modules post feedback from the same address) nor be stopped by it."""
    srv = LiveServer(tmp_path_factory.mktemp("contract"), index_settings.index_dir,
                     POLICY_QA_RATE_LIMIT_WRITES="off").start()
    yield srv
    srv.stop()


def test_the_server_publishes_this_schema(server: LiveServer) -> None:
    assert httpx.get(server.base_url + "/openapi.json", timeout=30).json() == SPEC


@schema.parametrize()
@settings(max_examples=EXAMPLES_PER_OPERATION, deadline=None, derandomize=True,
          suppress_health_check=list(HealthCheck))
def test_the_server_keeps_its_openapi_contract(case, server: LiveServer) -> None:  # noqa: ANN001
    case.call_and_validate(base_url=server.base_url, timeout=60, excluded_checks=[positive_data_acceptance])
