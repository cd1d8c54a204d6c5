"""The monitoring API on a real uvicorn (random 127.0.0.1 port) over a real paper run's
ledger, called with httpx: every answer equals what the ledger holds."""

from __future__ import annotations

import pandas as pd
import pytest
from ops_helpers import TOKEN, client
from prometheus_client.parser import text_string_to_metric_families

from aitrader.live.ledger import PAUSE, Ledger
from aitrader.ops.controls import status_payload

PROTECTED = [
    ("GET", "/status"),
    ("GET", "/positions"),
    ("GET", "/orders"),
    ("GET", "/fills"),
    ("GET", "/trades"),
    ("GET", "/equity"),
    ("GET", "/signals"),
    ("GET", "/risk"),
    ("GET", "/monitoring"),
    ("GET", "/ml-metrics"),
    ("GET", "/drift"),
    ("POST", "/control/pause"),
    ("POST", "/control/resume"),
    ("POST", "/control/kill"),
]
Api = tuple[str, Ledger]


def metrics(url: str) -> dict[str, float]:
    text = client(url, token=None).get("/metrics").text
    out: dict[str, float] = {}
    for family in text_string_to_metric_families(text):
        for sample in family.samples:
            labels = ",".join(f"{k}={v}" for k, v in sorted(sample.labels.items()))
            out[sample.name + (f"{{{labels}}}" if labels else "")] = sample.value
    return out


@pytest.mark.parametrize("token", [None, "wrong-token-0123456789", TOKEN + "x", TOKEN[:-1]])
def test_missing_or_wrong_tokens_get_401_and_nothing_else(api: Api, token: str | None) -> None:
    url, ledger = api
    equity = f"{ledger.equity_summary().last_equity:.4f}"[:6]
    with client(url, token) as http:
        for method, path in PROTECTED:
            response = http.request(method, path, json={"reason": "intruder"})
            assert response.status_code == 401, (method, path)
            assert response.json() == {"detail": "unauthorized"}
            assert response.headers["www-authenticate"] == "Bearer"
            assert equity not in response.text and "BTC" not in response.text
    assert not ledger.get_flag(PAUSE).on and not ledger.events("control")  # nothing written


def test_a_basic_auth_header_with_the_token_is_refused(api: Api) -> None:
    url, _ = api
    with client(url, token=None) as http:
        response = http.get("/status", headers={"Authorization": f"Basic {TOKEN}"})
    assert response.status_code == 401 and response.json() == {"detail": "unauthorized"}


def test_health_and_metrics_answer_without_a_token(api: Api) -> None:
    url, ledger = api
    with client(url, token=None) as http:
        assert http.get("/health").json() == {"status": "ok"}
        scrape = http.get("/metrics")
    assert scrape.headers["content-type"].startswith("text/plain")
    values = metrics(url)
    summary = ledger.equity_summary()
    assert values["aitrader_equity"] == pytest.approx(summary.last_equity)
    assert values["aitrader_pnl"] == pytest.approx(summary.last_equity - summary.first_equity)
    assert values["aitrader_fills_total"] == len(ledger.fills())
    assert values["aitrader_orders_total"] == len(ledger.orders())
    decisions = ledger.risk_decisions()
    rejects = int((decisions["action"] == "reject").sum())
    assert values["aitrader_risk_rejects_total"] == rejects
    assert values["aitrader_risk_decisions_total{action=accept}"] == int(
        (decisions["action"] == "accept").sum()
    )
    held = ledger.positions()["BTC/USD"]
    assert values["aitrader_position_qty{symbol=BTC/USD}"] == pytest.approx(held.qty)
    assert values["aitrader_realised_pnl{symbol=BTC/USD}"] == pytest.approx(held.realised_pnl)
    assert values["aitrader_bars"] == 400 and values["aitrader_open_orders"] == 0
    assert values["aitrader_paused"] == 0 and values["aitrader_kill_switch"] == 0
    last_bar = pd.Timestamp("2022-12-31T23:00:00Z")  # the sample's last hourly bar
    age = (pd.Timestamp.now(tz="UTC") - last_bar).total_seconds()
    assert values["aitrader_feed_age_seconds"] == pytest.approx(age, abs=120)


def test_status_positions_orders_equity_equal_the_ledger(api: Api) -> None:
    url, ledger = api
    with client(url) as http:
        status = http.get("/status").json()
        positions = http.get("/positions").json()
        orders = http.get("/orders", params={"status": "all", "limit": 5}).json()
        equity = http.get("/equity", params={"limit": 3}).json()
    assert status == status_payload(ledger) and status["bars"] == 400
    assert status["status"] == "stopped" and not status["paused"]
    held = ledger.positions()["BTC/USD"]
    expected = {"symbol": "BTC/USD", "qty": held.qty, "avg_price": held.avg_price}
    assert positions == [{**expected, "realised_pnl": held.realised_pnl}]
    everything = ledger.orders()
    assert [o["client_order_id"] for o in orders] == [o.client_order_id for o in everything[-5:]]
    assert {o["status"] for o in orders} == {"filled"}
    curve = ledger.equity_curve()
    assert equity["points"] == 400 and equity["last_equity"] == curve["equity"].iloc[-1]
    assert [p["equity"] for p in equity["curve"]] == list(curve["equity"].iloc[-3:])
    assert equity["pnl"] == pytest.approx(curve["equity"].iloc[-1] - curve["equity"].iloc[0])


def test_fills_are_paged_and_filtered(api: Api) -> None:
    url, ledger = api
    every = ledger.fills()
    with client(url) as http:
        first = http.get("/fills", params={"limit": 4}).json()
        second = http.get("/fills", params={"limit": 4, "offset": 4}).json()
        sells = http.get("/fills", params={"side": "sell", "limit": 1000}).json()
        since = every["time"].iloc[10]
        late = http.get("/fills", params={"since": since.isoformat()}).json()
        bad = http.get("/fills", params={"side": "-1"})
    ids = list(every["trade_id"])
    assert first["total"] == second["total"] == len(every)
    assert [f["trade_id"] for f in first["items"] + second["items"]] == ids[:8]
    assert sells["total"] == int((every["side"] == -1).sum()) > 0
    assert {f["side"] for f in sells["items"]} == {-1}
    assert late["total"] == int((every["time"] >= since).sum())
    assert bad.status_code == 422


def test_trades_are_the_trade_books_round_trips(api: Api) -> None:
    url, ledger = api
    with client(url) as http:
        page = http.get("/trades", params={"limit": 1000}).json()
        closed = http.get("/trades", params={"is_open": False, "limit": 3, "offset": 2}).json()
        shorts = http.get("/trades", params={"side": "sell"}).json()
    assert page["total"] == 11 and len(ledger.fills()) == 21  # 10 round trips and 1 open
    last = page["items"][-1]
    assert last["is_open"] and last["pnl"] is None and last["exit_time"] is None
    assert last["qty"] == pytest.approx(ledger.positions()["BTC/USD"].qty)
    done = [t for t in page["items"] if not t["is_open"]]
    assert closed["total"] == 10 and closed["items"] == done[2:5]
    assert shorts["total"] == 0  # the SMA baseline trades long only here
    # gross of fees, the closed trades' P&L is the ledger's realised P&L
    gross = sum(t["pnl"] + t["fees"] for t in done)
    assert gross == pytest.approx(ledger.positions()["BTC/USD"].realised_pnl)


def test_signals_risk_and_monitoring(api: Api) -> None:
    url, ledger = api
    with client(url) as http:
        signals = http.get("/signals", params={"limit": 2}).json()
        risk = http.get("/risk", params={"limit": 5}).json()
        watch = http.get("/monitoring").json()
    assert [s["target"] for s in signals] == list(ledger.latest_signals(2)["target"])
    assert signals[-1]["details"]["stop_loss"] == 0.03
    decisions = ledger.risk_decisions()
    assert sum(risk["counts"].values()) == len(decisions)
    assert [d["reason"] for d in risk["decisions"]] == list(decisions["reason"].iloc[-5:])
    assert risk["kill_switch"] is False
    assert watch["status"] == "stopped" and watch["stalled"] == [] and watch["errors"] == 0
    assert watch["last_bar"] == "2022-12-31T23:00:00+00:00"


def test_controls_write_the_flags_the_runner_reads(api: Api) -> None:
    url, ledger = api
    with client(url) as http:
        paused = http.post("/control/pause", json={"reason": "exchange maintenance"}).json()
        assert ledger.get_flag(PAUSE).on and ledger.get_flag(PAUSE).reason == "exchange maintenance"
        status = http.get("/status").json()
        scraped = metrics(url)["aitrader_paused"]
        resumed = http.post("/control/resume").json()
        too_long = http.post("/control/pause", json={"reason": "x" * 501})
    assert paused["on"] and paused["message"].startswith("paused")
    assert status["paused"] and status["pause_reason"] == "exchange maintenance"
    assert scraped == 1.0
    assert not resumed["on"] and not ledger.get_flag(PAUSE).on
    assert too_long.status_code == 422 and not ledger.get_flag(PAUSE).on
    messages = [e.message for e in ledger.events("control")]
    assert messages == ["flag pause on", "flag pause off"]


def test_openapi_docs_describe_every_route(api: Api) -> None:
    url, _ = api
    with client(url, token=None) as http:
        schema = http.get("/openapi.json").json()
        docs = http.get("/docs")
    assert docs.status_code == 200 and "swagger" in docs.text.lower()
    paths = set(schema["paths"])
    assert {p for _, p in PROTECTED} | {"/health", "/metrics"} <= paths
    assert "HTTPBearer" in schema["components"]["securitySchemes"]


def test_monitoring_counts_errors_reconnects_and_a_stalled_feed(api: Api) -> None:
    url, ledger = api
    ledger.log_event("feed", "websocket BTC/USD reconnect (attempt 2)", "warning")
    ledger.log_event("error", "bar 2022-12-31: transient error: NetworkError", "warning")
    ledger.save_state("status", {"status": "degraded", "since": "now", "stalled": ["BTC/USD"]})
    with client(url) as http:
        watch = http.get("/monitoring").json()
    values = metrics(url)
    assert watch["status"] == "degraded" and watch["stalled"] == ["BTC/USD"]
    assert watch["reconnects"] == 1 and watch["errors"] == 2
    assert [e["kind"] for e in watch["recent_errors"]] == ["feed", "error"]
    assert values["aitrader_reconnects"] == 1 and values["aitrader_errors"] == 2
    assert values["aitrader_degraded"] == 1 and values["aitrader_feeds_stalled"] == 1
