"""Command-line interface: ``aitrader GROUP COMMAND``. Each command is a thin call into the library.

Exit codes, one rule for every command: 0 ok; 1 the command ran and failed (data rejected by
the quality checks, a conflict with stored bars, a venue or network failure); 2 usage — a bad
option, value or configuration, or a name that does not exist (sample, data set, exchange,
market, timeframe); 130 interrupted.

Start-up: a command's module is imported only when that command runs (``aitrader --help`` reads
the summaries from the sources, see :mod:`aitrader.cli.lazy`). To add a command or a group, write
it in its own module under ``aitrader/cli/`` and add one line to ``COMMANDS`` below
(``name: "aitrader.cli.module:function_or_typer_app"``); keep heavy imports (ccxt, models,
plots, scipy, numba …) inside the functions that need them. ``tests/test_cli_startup.py`` checks
that ``aitrader --help`` and ``aitrader data samples`` stay free of them.
"""

from __future__ import annotations

import logging
from collections.abc import Mapping
from pathlib import Path
from typing import Any, ClassVar

import typer
from rich.markup import escape
from typer import _click as click

from aitrader import DEFAULT_CONFIG_NAME, __version__
from aitrader.cli.common import JsonOption, emit_json, err_console, state
from aitrader.cli.lazy import LazyGroup
from aitrader.errors import AitraderError, ConfigError

COMMANDS: dict[str, str] = {
    # name: "module:attribute", imported when the command runs (listed in this order)
    "evaluate": "aitrader.cli.models:evaluate_command",
    "train": "aitrader.cli.models:train_command",
    "tune": "aitrader.cli.models:tune_command",
    "models": "aitrader.cli.models:models_app",
    "backtest": "aitrader.cli.backtest:backtest_command",
    "strategy": "aitrader.cli.strategy:app",
    "optimize": "aitrader.cli.optimize:optimize_command",
    "scan": "aitrader.cli.scan:scan_command",
    "paper": "aitrader.cli.live:paper_command",
    "live": "aitrader.cli.live:live_command",
    "plot": "aitrader.cli.plot:plot_command",
    "data": "aitrader.cli.data:app",
    "features": "aitrader.cli.features:app",
    "control": "aitrader.cli.control:app",
    "risk": "aitrader.cli.risk:app",
    "serve": "aitrader.cli.serve:serve_command",
    "dashboard": "aitrader.cli.dashboard:dashboard_command",
    "run": "aitrader.cli.run:run_command",
    "schedule": "aitrader.cli.schedule:app",
    "news": "aitrader.cli.news:app",
}


class _Group(LazyGroup):
    """Root group that turns project errors into a message and exit code (1 runtime, 2 config)."""

    lazy: ClassVar[Mapping[str, str]] = COMMANDS

    def invoke(self, ctx: click.Context) -> Any:
        try:
            return super().invoke(ctx)
        except AitraderError as exc:
            err_console.print(
                f"[bold red]error:[/] {escape(str(exc))}", highlight=False, soft_wrap=True
            )
            raise typer.Exit(exc.exit_code) from exc
        except KeyboardInterrupt:
            err_console.print("interrupted")
            raise typer.Exit(130) from None


app = typer.Typer(
    cls=_Group,
    name="aitrader",
    help="AI-assisted trading bot: market data, leak-free features and ML, backtests, paper/live.",
    no_args_is_help=True,
    rich_markup_mode="rich",
    pretty_exceptions_enable=False,
    context_settings={"help_option_names": ["-h", "--help"]},
)
_Group.app = app


def _version(value: bool) -> None:
    if value:
        typer.echo(f"aitrader {__version__}")
        raise typer.Exit()


@app.callback()
def root(
    ctx: typer.Context,
    config: Path = typer.Option(  # noqa: B008
        None,
        "--config",
        "-c",
        help=f"Config file (default: $AITRADER_CONFIG or ./{DEFAULT_CONFIG_NAME}).",
    ),
    log_level: str = typer.Option(
        None,
        "--log-level",
        "-l",
        help="DEBUG, INFO, WARNING, ERROR (default from config: WARNING).",
    ),
    version: bool = typer.Option(
        False, "--version", callback=_version, is_eager=True, help="Show the version."
    ),
) -> None:
    """aitrader — run `aitrader demo` for the whole pipeline on bundled data."""
    st = state(ctx)
    st.config_path = config
    if log_level:
        if log_level.upper() not in {"DEBUG", "INFO", "WARNING", "ERROR", "CRITICAL"}:
            raise ConfigError(
                f"--log-level {log_level!r}: use DEBUG, INFO, WARNING, ERROR or CRITICAL"
            )
        st.log_level = log_level.upper()
        logging.getLogger().setLevel(st.log_level)


@app.command()
def init(
    path: Path = typer.Argument(Path(DEFAULT_CONFIG_NAME), help="Where to write the template."),  # noqa: B008
    force: bool = typer.Option(False, "--force", help="Overwrite an existing file."),
    as_json: bool = JsonOption,
) -> None:
    """Write a commented configuration template.

    Example: aitrader init && $EDITOR aitrader.yaml
    """
    if path.exists() and not force:
        raise ConfigError(f"{path} already exists (use --force to overwrite)")
    from aitrader.config import template_text

    path.write_text(template_text())
    if as_json:
        emit_json({"wrote": str(path)})
    else:
        err_console.print(f"wrote {path}")


@app.command("config")
def config_command(
    ctx: typer.Context,
    as_json: bool = typer.Option(False, "--json", help="Print JSON instead of YAML."),
) -> None:
    """Show the effective configuration (file + environment + defaults), secrets masked.

    Example: AITRADER__COSTS__TAKER_FEE=0.0004 aitrader config
    """
    import json

    import yaml

    payload = state(ctx).settings.redacted()
    if as_json:
        typer.echo(json.dumps(payload, indent=2))
    else:
        typer.echo(yaml.safe_dump(payload, sort_keys=False).rstrip())


@app.command()
def demo(
    ctx: typer.Context,
    quick: bool = typer.Option(False, "--quick", help="Last ~19 months and a smaller model."),
    as_json: bool = JsonOption,
) -> None:
    """Run the main job offline on the bundled real data and write an HTML report.

    Data → features → walk-forward LightGBM → mode → signals → risk → backtest with costs.
    With --json the steps go to stderr and stdout gets the report path and the metrics.

    Example: aitrader demo --quick
    """
    import json

    from aitrader.cli.demo import run_demo

    report = run_demo(state(ctx).settings, quick=quick, console=err_console if as_json else None)
    if as_json:
        metrics = json.loads((report.parent / "metrics.json").read_text())
        emit_json({"report": str(report), "metrics": metrics})


def main() -> None:
    """Console-script entry point (exit codes: see the module docstring)."""
    logging.basicConfig(
        format="%(asctime)s %(levelname)s %(name)s: %(message)s", level=logging.WARNING
    )
    app()
