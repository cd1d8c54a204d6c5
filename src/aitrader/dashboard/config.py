"""What the dashboard process is told by ``aitrader dashboard`` (environment variables, so that
the token never shows in a process listing): the API's URL and token, the config file (data
store) and a model bundle."""

from __future__ import annotations

import os
from collections.abc import Mapping
from dataclasses import dataclass
from pathlib import Path

API_URL = "AITRADER_DASHBOARD_API_URL"
TOKEN = "AITRADER_DASHBOARD_TOKEN"
BUNDLE = "AITRADER_DASHBOARD_BUNDLE"


@dataclass(frozen=True)
class DashboardConfig:
    api_url: str = ""
    token: str = ""
    bundle: Path | None = None

    @classmethod
    def from_env(cls, env: Mapping[str, str] | None = None) -> DashboardConfig:
        values = os.environ if env is None else env
        bundle = values.get(BUNDLE, "")
        return cls(values.get(API_URL, ""), values.get(TOKEN, ""), Path(bundle) if bundle else None)

    def env(self) -> dict[str, str]:
        """The variables that hand this config to the Streamlit process."""
        out = {API_URL: self.api_url, TOKEN: self.token}
        return out | ({BUNDLE: str(self.bundle)} if self.bundle is not None else {})
