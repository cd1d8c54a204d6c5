"""The container files: ``docker-compose config`` (Debian's docker-compose, no daemon needed)
accepts the compose file with and without the monitoring profile; the Dockerfile is
multi-stage, non-root and health-checked; the Grafana dashboard charts only metrics the real
``/metrics`` exports and Prometheus scrapes the API service."""

from __future__ import annotations

import json
import os
import re
import shutil
import subprocess
from pathlib import Path
from typing import Any

import yaml
from ops_helpers import client

from aitrader.live.ledger import Ledger

ROOT = Path(__file__).resolve().parents[2]
SECRETS = {"AITRADER_API_TOKEN": "t" * 32, "AITRADER_API_TOKEN_HASH": "pbkdf2_sha256$1$c2FsdA$x"}


def compose(*args: str, env: dict[str, str] | None = None) -> subprocess.CompletedProcess[str]:
    binary = shutil.which("docker-compose")
    assert binary, "docker-compose is not installed (.ci/run installs Debian's package)"
    base = {k: v for k, v in os.environ.items() if not k.startswith("AITRADER")}
    return subprocess.run(
        [binary, "-f", str(ROOT / "docker-compose.yml"), *args, "config"],
        env=base | (env if env is not None else SECRETS),
        capture_output=True,
        text=True,
        timeout=120,
        check=False,
    )


def services(*args: str) -> dict[str, Any]:
    done = compose(*args)
    assert done.returncode == 0, done.stderr
    parsed: dict[str, Any] = yaml.safe_load(done.stdout)["services"]
    return parsed


def test_compose_runs_bot_api_and_dashboard_on_localhost_ports() -> None:
    found = {k: v for k, v in services().items() if not v.get("profiles")}
    assert set(found) == {"bot", "api", "dashboard"}
    assert found["bot"]["command"][:3] == ["paper", "--replay", "sample:BTC-USD-1h"]
    assert found["api"]["command"][0] == "serve"
    hashed = found["api"]["environment"]["AITRADER__API__TOKEN_HASH"]
    assert hashed.replace("$$", "$") == SECRETS["AITRADER_API_TOKEN_HASH"]  # config escapes $
    assert found["dashboard"]["environment"]["AITRADER_API_TOKEN"] == SECRETS["AITRADER_API_TOKEN"]
    assert "http://api:8080" in found["dashboard"]["command"]
    for service in found.values():
        for port in service.get("ports", []):
            assert str(port).startswith("127.0.0.1:"), port


def test_monitoring_profile_adds_prometheus_and_grafana() -> None:
    found = services("--profile", "monitoring")
    optional = {k for k, v in found.items() if v.get("profiles") == ["monitoring"]}
    assert optional == {"prometheus", "grafana"}
    mounts = [str(v).split(":")[0] for v in found["grafana"]["volumes"]]
    assert mounts == [
        str(ROOT / "deploy/grafana/provisioning"),
        str(ROOT / "deploy/grafana/dashboards"),
    ]
    scrape = yaml.safe_load((ROOT / "deploy/prometheus/prometheus.yml").read_text())
    (job,) = scrape["scrape_configs"]
    assert job["metrics_path"] == "/metrics"
    assert job["static_configs"][0]["targets"] == ["api:8080"]


def test_compose_refuses_to_start_without_the_token_hash() -> None:
    done = compose(env={"AITRADER_API_TOKEN": SECRETS["AITRADER_API_TOKEN"]})
    assert done.returncode != 0
    assert "AITRADER_API_TOKEN_HASH" in done.stderr


def test_dockerfile_is_multi_stage_non_root_and_health_checked() -> None:
    text = (ROOT / "Dockerfile").read_text()
    stages = re.findall(r"^FROM (\S+)", text, flags=re.M)
    assert len(stages) == 2 and all(s.startswith("python:3.11-slim") for s in stages)
    final = text.split("\nFROM ")[-1]
    assert re.search(r"^USER aitrader$", final, flags=re.M)
    assert "useradd" in final and "--uid 10001" in final
    assert "HEALTHCHECK" in final and "/health" in final
    assert "COPY --from=build /opt/venv /opt/venv" in final


def test_grafana_dashboard_charts_only_exported_metrics(api: tuple[str, Ledger]) -> None:
    exported = {
        line.split()[2]
        for line in client(api[0], token=None).get("/metrics").text.splitlines()
        if line.startswith("# TYPE ")
    }
    exported |= {f"{name}_total" for name in exported}
    board = json.loads((ROOT / "deploy/grafana/dashboards/aitrader.json").read_text())
    charted = {
        name
        for panel in board["panels"]
        for target in panel["targets"]
        for name in re.findall(r"aitrader_[a-z_]+", target["expr"])
    }
    assert len(charted) >= 15
    assert charted <= exported, charted - exported
