"""A schemathesis fuzz of the API's own OpenAPI schema, against a real uvicorn over a real paper
ledger: valid and invalid inputs (bounded examples per operation), with and without the token,
never get a 5xx."""

from __future__ import annotations

import pytest
import schemathesis
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st
from ops_helpers import TOKEN
from schemathesis.checks import not_a_server_error
from schemathesis.generation import GenerationMode

from aitrader.live.ledger import Ledger

EXAMPLES = 25


@pytest.mark.slow
def test_no_operation_answers_with_a_server_error(api: tuple[str, Ledger]) -> None:
    url, _ = api
    schema = schemathesis.openapi.from_url(f"{url}/openapi.json")
    operations = [result.ok() for result in schema.get_all_operations()]
    assert len(operations) >= 14
    statuses: set[int] = set()
    for operation in operations:
        cases = st.one_of(
            operation.as_strategy(GenerationMode.POSITIVE),
            operation.as_strategy(GenerationMode.NEGATIVE),
        )

        @settings(
            max_examples=EXAMPLES,
            deadline=None,
            database=None,
            suppress_health_check=list(HealthCheck),
        )
        @given(case=cases, authorised=st.booleans())
        def fuzz(case: schemathesis.Case, authorised: bool) -> None:
            headers = {"Authorization": f"Bearer {TOKEN}"} if authorised else {}
            response = case.call(base_url=url, headers=headers, timeout=30)
            statuses.add(response.status_code)
            case.validate_response(response, checks=[not_a_server_error])

        fuzz()
    assert {200, 401, 422} <= statuses and not any(s >= 500 for s in statuses)
