"""The dashboard's view of the monitoring API: every call answers an :class:`Answer` that holds
the JSON body or says, in words, why there is none (no API configured, unreachable, wrong
token, a route this API does not have yet) — a page shows that sentence instead of failing."""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any

import httpx

TIMEOUT = 10.0


@dataclass(frozen=True)
class Answer:
    """A route's JSON body (``data``), or ``missing``: why there is none."""

    data: Any = None
    missing: str = ""
    status: int = 0

    @property
    def ok(self) -> bool:
        return not self.missing


class ApiClient:
    """GET and POST against ``base_url`` with ``Authorization: Bearer TOKEN``."""

    def __init__(self, base_url: str, token: str, timeout: float = TIMEOUT) -> None:
        self.base_url = base_url.rstrip("/")
        headers = {"Authorization": f"Bearer {token}"} if token else {}
        self._http = httpx.Client(base_url=self.base_url, headers=headers, timeout=timeout)

    def close(self) -> None:
        self._http.close()

    def get(self, path: str, params: Mapping[str, Any] | None = None) -> Answer:
        return self._call("GET", path, params=dict(params or {}))

    def post(self, path: str, body: Mapping[str, Any] | None = None) -> Answer:
        return self._call("POST", path, json=dict(body or {}))

    def _call(self, method: str, path: str, **kwargs: Any) -> Answer:
        try:
            response = self._http.request(method, path, **kwargs)
        except httpx.HTTPError as exc:
            return Answer(missing=f"the API at {self.base_url} cannot be reached ({exc})")
        return _answer(path, response)


def _answer(path: str, response: httpx.Response) -> Answer:
    code = response.status_code
    if code == 401:
        return Answer(missing="the API refused the token (401): check the dashboard's token")
    if code == 404:
        return Answer(missing=f"this API has no {path} route (yet)", status=code)
    if code >= 400:
        return Answer(missing=f"{path} answered {code}: {response.text[:200]}", status=code)
    try:
        return Answer(data=response.json(), status=code)
    except ValueError:
        return Answer(missing=f"{path} answered {code} with a body that is not JSON", status=code)


class NoApi:
    """What the pages get when no API URL is configured: every route is missing, saying so."""

    base_url = ""

    def get(self, path: str, params: Mapping[str, Any] | None = None) -> Answer:
        return Answer(missing="no API configured: start it with `aitrader dashboard --api-url`")

    def post(self, path: str, body: Mapping[str, Any] | None = None) -> Answer:
        return self.get(path)

    def close(self) -> None:
        return None
