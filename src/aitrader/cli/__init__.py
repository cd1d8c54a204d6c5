"""Command-line interface: ``aitrader GROUP COMMAND``. Each command is a thin call into the library.

Exit codes: 0 ok, 1 runtime error, 2 usage or configuration error.
"""

from __future__ import annotations

import logging
from pathlib import Path
from typing import Any

import typer
from rich.markup import escape
from typer import _click as click
from typer.core import TyperGroup

from aitrader import __version__
from aitrader.cli import backtest as backtest_cli
from aitrader.cli import control as control_cli
from aitrader.cli import data as data_cli
from aitrader.cli import features as features_cli
from aitrader.cli import live as live_cli
from aitrader.cli import models as models_cli
from aitrader.cli import risk as risk_cli
from aitrader.cli import scan as scan_cli
from aitrader.cli.common import err_console, state
from aitrader.config import DEFAULT_CONFIG_NAME, template_text
from aitrader.errors import AitraderError, ConfigError
from aitrader.ops.cli import serve_command


class _Group(TyperGroup):
    """Root group that turns project errors into a message and exit code (1 runtime, 2 config)."""

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
) -> None:
    """Write a commented configuration template.

    Example: aitrader init && $EDITOR aitrader.yaml
    """
    if path.exists() and not force:
        raise ConfigError(f"{path} already exists (use --force to overwrite)")
    path.write_text(template_text())
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
) -> None:
    """Run the main job offline on the bundled real data and write an HTML report.

    Data → features → walk-forward LightGBM → mode → signals → risk → backtest with costs.

    Example: aitrader demo --quick
    """
    from aitrader.demo import run_demo

    run_demo(state(ctx).settings, quick=quick)


app.add_typer(data_cli.app, name="data")
app.add_typer(features_cli.app, name="features")
app.command("evaluate")(models_cli.evaluate_command)
app.command("train")(models_cli.train_command)
app.command("tune")(models_cli.tune_command)
app.command("backtest")(backtest_cli.backtest_command)
app.command("scan")(scan_cli.scan_command)
app.command("paper")(live_cli.paper_command)
app.command("live")(live_cli.live_command)
app.add_typer(control_cli.app, name="control")
app.add_typer(risk_cli.app, name="risk")
app.command("serve")(serve_command)


def main() -> None:
    """Console-script entry point (exit codes: 0 ok, 1 runtime error, 2 usage/config error)."""
    logging.basicConfig(
        format="%(asctime)s %(levelname)s %(name)s: %(message)s", level=logging.WARNING
    )
    app()
