"""Schemathesis against /openapi.json on SQLite and PostgreSQL: requests built from the
schema, valid and invalid, never answer 5xx, and every response matches the schema.

(The operations are walked here with Hypothesis directly: schemathesis's pytest
``from_fixture`` does not run under pytest 9.)
"""

from __future__ import annotations

from pathlib import Path

import hypothesis
import pytest
import schemathesis
from fastapi.testclient import TestClient
from schemathesis import GenerationMode
from schemathesis.specs.openapi.checks import positive_data_acceptance
from tests.service.conftest import ADMIN

from computenet.api.app import create_app
from computenet.settings import Settings

EXAMPLES_PER_OPERATION = 25


@pytest.mark.parametrize("role", ["tenant", "admin"])
def test_api_conforms_and_never_5xx(db_url: str, tmp_path: Path, role: str) -> None:
    # Every operation is also tried with a broken token (which must answer 401), hundreds
    # of times from one address: lift the limit on unknown tokens that would answer 429.
    settings = Settings(
        db_url=db_url, home=tmp_path, admin_token=ADMIN, run_loop=False, auth_fail_burst=10**6
    )
    app = create_app(settings)
    client = TestClient(app)
    admin = {"Authorization": f"Bearer {ADMIN}"}
    fuzz = {"name": "fuzz", "permissions": ["commands"]}  # so commands are accepted too
    tok = client.post("/v1/tenants", json=fuzz, headers=admin).json()["token"]
    token = tok if role == "tenant" else ADMIN
    seed = {"name": "seed", "accelerators": 1, "duration_h": 1.0}
    client.post("/v1/jobs", json=seed, headers={"Authorization": f"Bearer {token}"})

    schema = schemathesis.openapi.from_asgi("/openapi.json", app)

    # The token is the caller's real one; schemathesis also probes every operation without
    # it and with a broken one (the ignored_auth check), which must answer 401.
    @schema.auth.auth(refresh_interval=None, retry_on=[])
    class Token:
        def get(self, case: schemathesis.Case, ctx: object) -> str:
            return token

        def set(self, case: schemathesis.Case, data: str, ctx: object) -> None:
            case.headers = {**(case.headers or {}), "Authorization": f"Bearer {data}"}

    # A body over the size limit is rightly refused with 413.
    schema.config.checks.negative_data_rejection.expected_statuses.append("413")
    operations = [result.ok() for result in schema.get_all_operations()]
    assert len(operations) >= 14  # every route is in the schema
    failures: list[str] = []
    for op in operations:
        for mode in (GenerationMode.POSITIVE, GenerationMode.NEGATIVE):

            @hypothesis.settings(
                max_examples=EXAMPLES_PER_OPERATION,
                derandomize=True,
                database=None,
                deadline=None,
                suppress_health_check=list(hypothesis.HealthCheck),
            )
            @hypothesis.given(case=op.as_strategy(generation_mode=mode))
            def check(case: schemathesis.Case) -> None:
                excluded = []
                if isinstance(case.body, dict) and (
                    case.body.get("datasets") or case.body.get("priority_class")
                ):
                    # Dataset ids and priority class names are valid by the schema but must
                    # name a registered dataset of the caller or a defined class: 422 is
                    # the right answer to a made-up one.
                    excluded.append(positive_data_acceptance)
                if isinstance(case.body, dict) and case.body.get("sites"):
                    # Only a provider owns sites: sites for a tenant or an admin are 422.
                    excluded.append(positive_data_acceptance)
                if case.method.upper() == "POST" and case.path.startswith("/v1/market/"):
                    # Offers, certificates and orders are checked against the network and
                    # the open offers (the site's pools and their size, a window that ends
                    # after it starts, the certificate's hash): 422 naming the field is the
                    # right answer to a schema-valid one that breaks them.
                    excluded.append(positive_data_acceptance)
                times = ("time", "toTime", "dataStartAt", "dataEndAt")
                if case.path.startswith("/v1/carbon-aware") and any(
                    k in (case.query or {}) for k in times
                ):
                    # Each time is valid by the schema, but how they relate is not: toTime
                    # after time, a span of at most 366 days, forecast bounds inside the
                    # current forecast. 422 naming the parameter is the right answer.
                    excluded.append(positive_data_acceptance)
                if case.path == "/v1/grid-events" and case.method.upper() == "POST":
                    # A grid event's window is judged against the clock (not over yet, at
                    # most 7 days) and names one site or province of the loaded network:
                    # 4xx naming the field is the right answer to a made-up one.
                    excluded.append(positive_data_acceptance)
                if case.path == "/v1/services" and case.method.upper() == "POST":
                    # Demand is keyed by the loaded network's user regions, and the accepted
                    # accelerator types must exist: 4xx naming the made-up one is right.
                    excluded.append(positive_data_acceptance)
                case.call_and_validate(excluded_checks=excluded)

            try:
                check()
            except hypothesis.errors.Unsatisfiable:
                assert mode is GenerationMode.NEGATIVE  # no input to break (e.g. /healthz)
            except (Exception, BaseExceptionGroup) as exc:  # every operation's failure, not one
                failures.append(f"{op.method.upper()} {op.path} [{mode.value}]: {exc}")
    assert not failures, "\n\n".join(failures)
