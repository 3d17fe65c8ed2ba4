"""/openapi.json describes what the app serves, /docs lists it from the package, and
requests generated from the document (schemathesis) never get a 5xx from /api/v1."""

from __future__ import annotations

import asyncio
import re
from pathlib import Path
from typing import Any

import hypothesis
import schemathesis
from hypothesis import HealthCheck
from starlette.routing import Route

from mystic_trading.sandbox import SandboxServer
from mystic_trading.throttle import Level

from .conftest import Served
from .test_admin import AUTH, TOKEN, serving_settings

# Bounded: a few examples per operation and mode keeps the run well under a minute.
EXAMPLES = 25


async def test_document_covers_the_route_table(served: Served) -> None:
    """OpenAPI 3.1; every /api/v1 route (admin included) is described with its method, and
    every path described is one the app serves."""
    async with served.client() as c:
        answer = await c.get("/openapi.json")
    assert answer.status_code == 200
    doc = answer.json()
    assert doc["openapi"].startswith("3.1")
    served_paths: dict[str, set[str]] = {}
    for route in served.app.routes:
        if isinstance(route, Route):
            methods = {m.lower() for m in route.methods or ()} - {"head"}
            served_paths[route.path] = methods
    for path, methods in served_paths.items():
        if path.startswith("/api/v1/"):
            assert path in doc["paths"], path
            assert set(doc["paths"][path]) == methods, path
    for path, ops in doc["paths"].items():
        if "{rest" not in path and not path.startswith("/api/v3/"):
            assert path in served_paths, path
            assert set(ops) <= served_paths[path]
    admin = doc["paths"]["/api/v1/admin/level"]["post"]
    assert admin["security"] == [{"bearer": []}]
    body = doc["components"]["schemas"]["LevelBody"]
    assert body["required"] == ["level"]
    assert body["additionalProperties"] is False
    assert body["properties"]["level"]["enum"] == sorted(level.value for level in Level)


async def test_docs_page_comes_from_the_package(served: Served) -> None:
    """/docs is HTML that loads /openapi.json from this service and nothing from elsewhere."""
    async with served.client() as c:
        answer = await c.get("/docs")
    assert answer.status_code == 200
    assert answer.headers["content-type"].startswith("text/html")
    page = answer.text
    assert "/openapi.json" in page
    assert not re.search(r"""(src|href)\s*=\s*["']?(https?:)?//""", page)
    assert "<script src" not in page


def _run_schemathesis(url: str) -> list[tuple[str, int, str]]:
    """Every /api/v1 operation, positive and negative cases, with the admin token; the
    5xx answers seen (method and path, status, body)."""
    schema = (
        schemathesis.openapi.from_url(f"{url}/openapi.json")
        .include(path_regex="^/api/v1/")
        .exclude(path="/api/v1/dashboard/stream")  # Server-Sent Events: never ends
    )
    failures: list[tuple[str, int, str]] = []
    sent = [0]
    operations = [result.ok() for result in schema.get_all_operations()]
    assert len(operations) >= 17
    for operation in operations:
        for mode in (schemathesis.GenerationMode.POSITIVE, schemathesis.GenerationMode.NEGATIVE):

            @hypothesis.given(case=operation.as_strategy(generation_mode=mode))
            @hypothesis.settings(
                max_examples=EXAMPLES,
                deadline=None,
                database=None,
                derandomize=True,
                suppress_health_check=list(HealthCheck),
                phases=[hypothesis.Phase.explicit, hypothesis.Phase.generate],
            )
            def check(case: Any) -> None:
                response = case.call(base_url=url, headers=AUTH, timeout=20)
                sent[0] += 1
                if response.status_code >= 500:
                    failures.append(
                        (
                            f"{case.method} {case.formatted_path}",
                            response.status_code,
                            response.text,
                        )
                    )

            try:
                check()
            except hypothesis.errors.Unsatisfiable:
                # Nothing to get wrong: an operation without parameters or body has no
                # negative case.
                assert mode is schemathesis.GenerationMode.NEGATIVE, operation.label
    assert sent[0] >= len(operations) * EXAMPLES // 2
    return failures


async def test_generated_requests_never_get_a_5xx(exchange: SandboxServer, tmp_path: Path) -> None:
    """schemathesis over /openapi.json (every /api/v1 read route and every admin POST,
    with the token): no answer is a 5xx."""
    async with serving_settings(exchange, tmp_path, api={"admin_token": TOKEN}) as running:
        failures = await asyncio.to_thread(_run_schemathesis, running.url)
    assert failures == []
