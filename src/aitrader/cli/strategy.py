"""``aitrader strategy list|new|check`` and the strategy options backtest, paper and live share.

Heavy modules (engine, models) are imported inside the commands, when they run.
"""

from __future__ import annotations

import re
from dataclasses import dataclass, field
from pathlib import Path
from typing import TYPE_CHECKING, Any

import typer
from rich.markup import escape

from aitrader.cli.common import (
    JsonOption,
    TrustBundleOption,
    console,
    emit_json,
    err_console,
    settings,
    state,
    table,
)
from aitrader.errors import ConfigError

if TYPE_CHECKING:
    from aitrader.config import Settings
    from aitrader.strategy.base import Strategy

app = typer.Typer(help="Strategies: list them, write your own, check its vectorised twin.")

StrategyOption = typer.Option(
    None,
    "--strategy",
    "-s",
    help="NAME (aitrader strategy list), package.module:Class or path/file.py:Class "
    "[default: sma-cross; model with --model].",
)
ParamOption = typer.Option(
    None, "--param", "-p", help="Strategy parameter KEY=VALUE (repeatable), e.g. fast=20."
)
ModelOption = typer.Option(
    None, "--model", "-m", help="Model bundle directory (aitrader train) the strategy trades."
)
StartOption = typer.Option(
    None, "--start", help="First traded bar (date, UTC); earlier bars warm the strategy up."
)
EndOption = typer.Option(None, "--end", help="Last bar (date, UTC).")
StopOption = typer.Option(
    None, "--stop-loss", help="Stop for every entry, fraction of entry (default: the strategy's)."
)
TargetOption = typer.Option(
    None, "--take-profit", help="Take-profit for every entry, fraction (default: the strategy's)."
)


@dataclass(frozen=True)
class StrategyChoice:
    """What decides a run: a strategy spec with its parameters, an optional model bundle and
    stop / take-profit overrides (the same options in backtest, paper and live)."""

    spec: str | None = None
    params: tuple[str, ...] = ()
    model: Path | None = None
    stop_loss: float | None = None
    take_profit: float | None = None
    trust_bundle: bool = False  # load a bundle holding a pickle (--trust-bundle)
    _cache: dict[str, Any] = field(default_factory=dict, compare=False, repr=False)

    def __post_init__(self) -> None:
        for name, value in (("--stop-loss", self.stop_loss), ("--take-profit", self.take_profit)):
            if value is not None and not 0 < value < 1:
                raise ConfigError(f"{name} must be a fraction in (0, 1), got {value}")

    @property
    def name(self) -> str:
        return self.spec or ("model" if self.model is not None else "sma-cross")

    def build(self) -> Strategy:
        """A fresh strategy instance with the given parameters (ConfigError if wrong)."""
        from aitrader.strategy.registry import load_strategy, parse_params

        strategy = load_strategy(self.name, parse_params(list(self.params)))
        if self.model is not None and not strategy.needs_model:
            raise ConfigError(f"--model given, but strategy {strategy.name} trades no model")
        return strategy

    def bundle(self) -> Any:
        """The model bundle (loaded once), or None."""
        if self.model is None:
            return None
        if "bundle" not in self._cache:
            if not self.model.is_dir():
                raise ConfigError(f"model bundle {self.model}: no such directory")
            from aitrader.models.registry import load_bundle

            self._cache["bundle"] = load_bundle(self.model, trust=self.trust_bundle)
        return self._cache["bundle"]

    def in_sample(self, first: Any, last: Any) -> str | None:
        """A warning when the traded bars ``first``..``last`` overlap the bundle's training or
        calibration window (in-sample: results look better than they can be), else None."""
        bundle = self.bundle()
        if bundle is None:
            return None
        import pandas as pd

        info = bundle.info
        seen_from = pd.Timestamp(info.train_window[0])
        seen_to = pd.Timestamp(info.calibration_window[1])
        if pd.Timestamp(last) < seen_from or pd.Timestamp(first) > seen_to:
            return None
        return (
            f"the traded bars ({first} → {last}) overlap the bundle's training and calibration "
            f"window ({seen_from} → {seen_to}): the run is in-sample and its results are "
            f"optimistic; trade bars after {seen_to} (--start) for an honest test"
        )

    def describe(self) -> dict[str, object]:
        """What goes into the ledger and the run fingerprint."""
        described: dict[str, object] = {**self.build().describe()}
        if self.model is not None:
            described |= {"model": str(self.model), "bundle": self.bundle().info.created}
        return described | {"stop_loss": self.stop_loss, "take_profit": self.take_profit}

    def history(self) -> int:
        """Bars of history a run loads before the first decision (the strategy's warm-up)."""
        return self.build().warmup

    def feed(
        self, cfg: Settings, symbols: list[str], timeframe: str, history: dict[str, Any]
    ) -> Any:
        """The strategy bar by bar as a paper/live target feed, set up with each symbol's
        ``history`` (the bars before the first one it decides), with the stop overrides."""
        from aitrader.strategy.base import Environment
        from aitrader.strategy.feed import StrategyFeed, protect

        env = Environment(tuple(symbols), timeframe, cfg, self.bundle(), history)
        feed = StrategyFeed(self.build(), env)
        idle = feed.strategy.idle_reason()
        if idle is not None:  # said before a paper or live run waits for bars in vain
            warn(f"this run will not trade: {idle}")
        return protect(feed, self.stop_loss, self.take_profit)


RunConfigOption = typer.Option(
    None,
    "--config",
    "-c",
    help="Config file; its run: section (strategy, params, model, data, stops …) sets this run.",
)


def warn_in_sample(chosen: StrategyChoice, first: Any, last: Any) -> None:
    """Print the in-sample warning of :meth:`StrategyChoice.in_sample`, if any."""
    message = chosen.in_sample(first, last)
    if message is not None:
        warn(message)


def warn(message: str) -> None:
    """A warning on stderr, the terminal wrapping it."""
    text = f"[bold yellow]warning:[/] {escape(message)}"
    err_console.print(text, highlight=False, soft_wrap=True)


def run_settings(ctx: typer.Context, config: Path | None) -> Settings:
    """The settings of a command that takes its own ``--config`` (same as the global one)."""
    if config is not None:
        current = state(ctx)
        if current.config_path not in (None, config):
            raise ConfigError(f"two config files given: {current.config_path} and {config}")
        current.config_path = config
    return settings(ctx)


def choice(
    cfg: Settings,
    spec: str | None,
    params: list[str] | None,
    model: Path | None,
    stops: tuple[float | None, float | None] = (None, None),
    trust: bool = False,
) -> StrategyChoice:
    """The strategy of a run: command-line options over the config's ``run:`` section
    (``--param`` merged key by key over ``run.params``)."""
    run = cfg.run
    merged = [f"{k}={'' if v is None else v}" for k, v in run.params.items()]
    stop_loss = stops[0] if stops[0] is not None else run.stop_loss
    take_profit = stops[1] if stops[1] is not None else run.take_profit
    bundle = model if model is not None else (Path(run.model) if run.model else None)
    return StrategyChoice(
        spec or run.strategy, (*merged, *(params or ())), bundle, stop_loss, take_profit, trust
    )


@app.command("list")
def list_command(as_json: bool = JsonOption) -> None:
    """Every registered strategy with its parameters (ranges are what `optimize` searches).

    Example: aitrader strategy list
    """
    from aitrader.strategy.registry import strategies

    found = strategies()
    if as_json:
        emit_json({name: _describe_class(cls) for name, cls in found.items()})
        return
    rows = []
    for name, cls in found.items():
        params = ", ".join(f"{k}={p.default}" for k, p in cls.parameters().items())
        rows.append([name, cls.summary(), params or "-"])
    console.print(table("Strategies", ["name", "what it does", "parameters"], rows))


def _describe_class(cls: Any) -> dict[str, Any]:
    params = {
        k: {"default": p.default, "low": p.low, "high": p.high, "help": p.help}
        for k, p in cls.parameters().items()
    }
    return {"summary": cls.summary(), "module": cls.__module__, "params": params}


def _class_name(name: str) -> str:
    words = re.split(r"[^0-9a-zA-Z]+", name)
    return "".join(w[:1].upper() + w[1:] for w in words if w) or "MyStrategy"


@app.command("new")
def new_command(
    name: str = typer.Argument(..., help="Strategy name; writes NAME.py with class Name."),
    directory: Path = typer.Option(Path("."), "--dir", help="Where to write it."),  # noqa: B008
    force: bool = typer.Option(False, "--force", help="Overwrite an existing file."),
) -> None:
    """Write a commented strategy template that backtests out of the box.

    Example:
    $ aitrader strategy new mine
    $ aitrader backtest --strategy ./mine.py:Mine sample:BTC-USD-1h
    """
    from importlib.resources import files

    if not re.fullmatch(r"[A-Za-z][A-Za-z0-9_-]*", name):
        raise ConfigError(f"strategy name {name!r}: use letters, digits, - and _ (a letter first)")
    cls = _class_name(name)
    path = directory / f"{name.replace('-', '_')}.py"
    if path.exists() and not force:
        raise ConfigError(f"{path} already exists (use --force to overwrite)")
    text = (files("aitrader") / "templates" / "strategy.py.txt").read_text()
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text(text.replace("__CLASS__", cls).replace("__NAME__", name))
    err_console.print(f"wrote {path}", highlight=False)
    err_console.print(
        f"next: aitrader backtest --strategy {path}:{cls} sample:BTC-USD-1h", highlight=False
    )


@app.command("check")
def check_command(
    ctx: typer.Context,
    strategy: str = typer.Argument(..., help="NAME, package.module:Class or file.py:Class."),
    datasets: list[str] | None = typer.Argument(  # noqa: B008
        None, help="sample:NAME or EXCHANGE:SYMBOL:TIMEFRAME (default: run.data)."
    ),
    params: list[str] | None = ParamOption,
    model: Path | None = ModelOption,
    trust_bundle: bool = TrustBundleOption,
    config: Path | None = RunConfigOption,
    rtol: float = typer.Option(1e-9, "--rtol", help="Relative tolerance of equal values."),
    as_json: bool = JsonOption,
) -> None:
    """Prove a strategy's vectorized method equal to its on_bar, bar by bar.

    Runs both through the same backtest and reports the first bar where they differ.
    Exit 1 when they differ.

    Example: aitrader strategy check sma-cross sample:BTC-USD-1h
    """
    from aitrader.strategy.run import check_strategy

    cfg = run_settings(ctx, config)
    chosen = choice(cfg, strategy, params, model, trust=trust_bundle)
    data, spec = run_inputs(cfg, datasets or cfg.run.data, chosen, (cfg.run.start, cfg.run.end))
    report = check_strategy(chosen.build, data, cfg, spec, rtol)
    payload = {
        **{"strategy": chosen.name, "bars": report.bars, "decisions": report.decisions},
        **{"equal": report.equal, "first_difference": report.difference},
        **{"equity_per_bar": report.equity_per_bar, "equity_vectorized": report.equity_vectorized},
    }
    if as_json:
        emit_json(payload)
    else:
        _print_check(payload)
    if not report.equal:
        raise typer.Exit(1)


def _print_check(payload: dict[str, Any]) -> None:
    rows = [
        ["bars compared", payload["bars"]],
        ["bars with a decision", payload["decisions"]],
        ["final equity, on_bar", f"{payload['equity_per_bar']:,.2f}"],
        ["final equity, vectorized", f"{payload['equity_vectorized']:,.2f}"],
    ]
    console.print(table(f"strategy check {payload['strategy']}", ["", "value"], rows))
    diff = payload["first_difference"]
    if payload["equal"]:
        console.print("[green]equal[/]: on_bar and vectorized decide the same on every bar")
    elif diff is None:
        console.print("[red]different[/]: same decisions but different final equity")
    else:
        console.print(
            f"[red]different[/] at bar {diff['bar']} ({diff['time']}), {diff['symbol']} "
            f"{diff['field']}: on_bar {diff['per_bar']} vs vectorized {diff['vectorized']}",
            highlight=False,
            soft_wrap=True,
        )


def run_inputs(
    cfg: Settings,
    datasets: list[str] | None,
    chosen: StrategyChoice,
    window: tuple[str | None, str | None] = (None, None),
) -> tuple[dict[str, Any], Any]:
    """The candles of ``datasets`` (one symbol each, cut to ``window`` = (start, end) dates)
    and the RunSpec of a backtest with the configured costs and risk."""
    from aitrader.data.datasets import load_dataset
    from aitrader.data.store import Store
    from aitrader.engine.backtest import RunOptions
    from aitrader.engine.config import BrokerConfig
    from aitrader.strategy.run import RunSpec

    if not datasets:
        raise ConfigError("no data: give DATASET (e.g. sample:BTC-USD-1h) or run.data in a config")
    store = Store(cfg.data.dir)
    loaded = [load_dataset(name, store) for name in datasets]
    symbols = [d.symbol for d in loaded]
    if len(set(symbols)) != len(symbols):
        raise ConfigError(f"the same symbol twice: {', '.join(symbols)}")
    timeframes = {d.timeframe for d in loaded}
    if len(timeframes) > 1:
        raise ConfigError(f"data sets of different timeframes: {', '.join(sorted(timeframes))}")
    data = {d.symbol: d.candles for d in loaded}
    start, end = window
    if end is not None:
        data = {s: f.loc[: parse_date(end, "end")] for s, f in data.items()}
    options = RunOptions(timeframe=loaded[0].timeframe, calendar=loaded[0].calendar)
    spec = RunSpec(BrokerConfig.from_costs(cfg.costs), cfg.risk, options, bundle=chosen.bundle())
    if start is not None:
        spec = _with_start(spec, data, start)
    return data, spec


def parse_date(text: str, option: str) -> Any:
    import pandas as pd

    try:
        stamp = pd.Timestamp(text)
    except ValueError:
        raise ConfigError(f"{option} {text!r}: not a date (use YYYY-MM-DD)") from None
    return stamp.tz_localize("UTC") if stamp.tzinfo is None else stamp.tz_convert("UTC")


def _with_start(spec: Any, data: dict[str, Any], start: str) -> Any:
    from dataclasses import replace

    from aitrader.strategy.run import align

    index = next(iter(align(data).values())).index
    return replace(spec, start=start_position(index, start, "start"))


def start_position(index: Any, start: str, option: str) -> int:
    """The position of the first bar at or after ``start`` (ConfigError past the last bar)."""
    position = int(index.searchsorted(parse_date(start, option)))
    if position >= len(index):
        raise ConfigError(f"{option} {start}: after the last bar ({index[-1]})")
    return position
