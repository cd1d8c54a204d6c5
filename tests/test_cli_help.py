"""Every command's ``--help`` as an 80-column terminal shows it: whole sentences, no reST."""

from __future__ import annotations

import re
from functools import cache
from itertools import pairwise

import pytest
from typer import _click as click
from typer.core import TyperGroup
from typer.main import get_command
from typer.testing import CliRunner

from aitrader.cli import app
from aitrader.cli.helptext import plain, reflow

runner = CliRunner()
WIDTH = 80
OWN_LINE = re.compile(r"(?:[-*+•]|\d+[.)]|\$)\s|Examples?\b")


@cache
def every_command() -> tuple[tuple[str, ...], ...]:
    """The path of every command and sub-command, the root's first (as ``--help`` lists them)."""
    found: list[tuple[str, ...]] = []

    def walk(command: click.Command, ctx: click.Context, path: tuple[str, ...]) -> None:
        found.append(path)
        if isinstance(command, TyperGroup):
            for name in command.list_commands(ctx):
                sub = command.get_command(ctx, name)
                assert sub is not None, name
                walk(sub, click.Context(sub, parent=ctx, info_name=name), (*path, name))

    root = get_command(app)
    walk(root, click.Context(root, info_name="aitrader"), ())
    return tuple(found)


def help_at_80(path: tuple[str, ...]) -> str:
    result = runner.invoke(app, [*path, "--help"], env={"COLUMNS": str(WIDTH)})
    assert result.exit_code == 0, result.output
    return result.output


def description(output: str) -> list[str]:
    """The prose between the usage line and the first panel, one entry per printed line."""
    lines = output.splitlines()
    start = next(i for i, line in enumerate(lines) if line.strip().startswith("Usage:"))
    end = next((i for i, line in enumerate(lines) if line.startswith("╭")), len(lines))
    return [line.rstrip() for line in lines[start + 2 : end]]


def ragged_breaks(lines: list[str]) -> list[str]:
    """Lines broken although the next line's first word would have fitted after them: Rich
    wraps a paragraph greedily, so such a break is one kept from the source's wrapping."""
    ragged = []
    for line, after in pairwise(lines):
        if not line.strip() or not after.strip() or OWN_LINE.match(after.strip()):
            continue
        if len(line) + 1 + len(after.split()[0]) <= WIDTH - 2:  # 1 column of padding each side
            ragged.append(f"{line.strip()!r} / {after.strip()!r}")
    return ragged


def test_every_group_and_subcommand_is_found() -> None:
    paths = {" ".join(p) for p in every_command()}
    assert {"", "backtest", "evaluate", "data", "data import", "data download"} <= paths
    assert {"models promote", "strategy check", "control kill", "news fetch"} <= paths
    assert len(paths) > 40


@pytest.mark.parametrize("path", every_command(), ids=lambda p: " ".join(p) or "aitrader")
def test_help_fits_80_columns_in_whole_sentences_without_rest(path: tuple[str, ...]) -> None:
    out = help_at_80(path)
    assert f"Usage: aitrader {' '.join(path)}".rstrip() in out
    assert max(len(line) for line in out.splitlines()) <= WIDTH
    for rest in ("``", ":class:`", ":func:`", ":mod:`", ":meth:`"):
        assert rest not in out
    assert "\\[" not in out  # square brackets shown once, not as escaped markup
    assert ragged_breaks(description(out)) == []
    lines = description(out)
    for k, line in enumerate(lines[:-1]):  # an example command is never wrapped in two
        if line.strip().startswith(("Example:", "$ ")) and line.strip() != "Example:":
            follows = lines[k + 1].strip()
            assert follows == "" or follows.startswith(("$ ", "Example")), (line, follows)


def test_backtest_help_reads_as_joined_sentences() -> None:
    lines = description(help_at_80(("backtest",)))
    text = " ".join(" ".join(lines).split())
    assert (
        "The same decision path as `aitrader paper --replay` (equal settings give equal results):"
        " the strategy's targets → risk manager → simulated fills at the next open with fees and"
        " slippage. Bars before --start warm the strategy up and are not traded." in text
    )
    assert "fees and" not in [line.strip() for line in lines]  # the source's line break is gone
    example = next(line for line in lines if line.strip().startswith("Example:"))
    assert example.strip().startswith("Example: aitrader backtest sample:BTC-USD-1h")


def test_rest_literals_become_code_in_evaluate_and_news() -> None:
    evaluate = " ".join(help_at_80(("evaluate",)).split())
    assert "Walk-forward, purged k-fold or CPCV (`validation.scheme`), calibrated" in evaluate
    news = " ".join(help_at_80(("news", "fetch")).split())
    assert "Fetch every feed in `sentiment.feeds` (RSS, Atom" in news


def test_square_brackets_in_help_are_shown() -> None:
    """Rich markup used to swallow ``[dashboard]`` and ``[default: 1m]`` from help texts."""
    dashboard = " ".join(help_at_80(("dashboard",)).split())
    assert "pip install 'aitrader[dashboard]'" in dashboard
    live = help_at_80(("live",))
    assert "Bar timeframe [default: 1m]." in live
    assert "[default: sma-cross;" in live


def test_group_listings_show_each_summary_joined() -> None:
    """A group lists each command's first paragraph as one text, wrapped only by the table."""
    out = runner.invoke(app, ["data", "--help"], env={"COLUMNS": "200"}).output
    assert "stored series only (no other file, no writes) unless --unsafe." in out
    out = runner.invoke(app, ["news", "--help"], env={"COLUMNS": "200"}).output
    assert "Fetch every feed in `sentiment.feeds` (RSS, Atom or CryptoPanic-style JSON)," in out


def test_reflow_keeps_paragraphs_lists_and_examples() -> None:
    text = """Summary that
    wraps.

    Body wrapped at 100 columns
    in the source, and ``code``.
    - an item that
      goes on
    - another item
    Example: aitrader data import prices.csv --symbol BTC/USDT
    --timeframe 1h
    Examples:
        aitrader a
        aitrader b
    $ aitrader c
    """
    assert reflow(text, markup=False).split("\n") == [
        "Summary that wraps.",
        "",
        "Body wrapped at 100 columns in the source, and `code`.",
        "- an item that goes on",
        "- another item",
        "Example: aitrader data import prices.csv --symbol BTC/USDT --timeframe 1h",
        "Examples:",
        "    aitrader a",
        "    aitrader b",
        "$ aitrader c",
    ]


def test_reflow_leaves_click_markers_and_escapes_rich_markup() -> None:
    assert reflow("Shown\nhere.\n\n\bkept\nas is\n\fhidden\ntext", markup=False) == (
        "Shown here.\n\n\bkept\nas is\n\fhidden\ntext"
    )
    assert reflow("pip install 'aitrader[dashboard]'") == "pip install 'aitrader\\[dashboard]'"


def test_plain_rest_roles() -> None:
    assert plain(":class:`aitrader.cli.lazy.LazyGroup` and :func:`~a.b`") == (
        "`aitrader.cli.lazy.LazyGroup` and `a.b`"
    )
    assert plain(":py:meth:`run <aitrader.Bot.run>` with ``x=1``") == "`run` with `x=1`"
