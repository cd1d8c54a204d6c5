"""Commands that are imported only when they run: fast ``aitrader --help`` and start-up.

A :class:`LazyGroup` knows its lazy commands as ``name -> "package.module:attribute"`` (a command
function or a ``typer.Typer`` sub-app). Listing them in the group's help reads each one's summary
(the function's docstring, or the sub-app's ``help=``) from the module's source, without
importing it; running a command, or asking for its own ``--help``, imports its module then and
registers it exactly as ``app.command(name)(function)`` / ``app.add_typer(sub_app, name=name)``
would have. Every command's help is reflowed for the terminal as it is registered
(:func:`aitrader.cli.helptext.tidy`).
"""

from __future__ import annotations

import ast
import importlib
import importlib.util
from collections.abc import Mapping
from difflib import get_close_matches
from functools import cache
from typing import Any, ClassVar

import typer
from typer import _click as click
from typer.core import TyperCommand, TyperGroup

from aitrader.cli.helptext import tidy


def _target(spec: str) -> tuple[str, str]:
    module, _, attribute = spec.partition(":")
    return module, attribute


def load_command(name: str, spec: str, like: typer.Typer) -> click.Command:
    """Import ``spec`` and build its click command as the group ``like`` would register it, its
    help reflowed for the terminal."""
    module, attribute = _target(spec)
    target = getattr(importlib.import_module(module), attribute)
    holder = typer.Typer(
        rich_markup_mode=like.rich_markup_mode,
        pretty_exceptions_enable=like.pretty_exceptions_enable,
        pretty_exceptions_short=like.pretty_exceptions_short,
    )
    if isinstance(target, typer.Typer):
        holder.add_typer(target, name=name)
    else:
        holder.command(name)(target)
    return tidy(typer.main.get_group(holder).commands[name], _markup(like))


def _markup(app: typer.Typer | None) -> bool:
    """Whether help is read as Rich markup (its square brackets need escaping)."""
    return app is None or app.rich_markup_mode == "rich"


@cache
def source_help(spec: str) -> str | None:
    """The help text of ``spec`` read from its module's source (None: not a plain literal)."""
    module, attribute = _target(spec)
    found = importlib.util.find_spec(module)
    if found is None or found.origin is None or not found.origin.endswith(".py"):
        return None  # no source to read: the command is imported instead
    try:
        with open(found.origin, encoding="utf-8") as handle:
            tree = ast.parse(handle.read())
    except (OSError, SyntaxError, UnicodeDecodeError):
        return None
    for node in tree.body:
        if isinstance(node, ast.FunctionDef) and node.name == attribute:
            return ast.get_docstring(node)
        if isinstance(node, ast.Assign) and any(
            isinstance(t, ast.Name) and t.id == attribute for t in node.targets
        ):
            call = node.value
            for keyword in call.keywords if isinstance(call, ast.Call) else []:
                if keyword.arg == "help" and isinstance(keyword.value, ast.Constant):
                    return str(keyword.value.value)
    return None


class LazyGroup(TyperGroup):
    """A Typer group whose ``lazy`` commands are imported on first use (see the module doc)."""

    lazy: ClassVar[Mapping[str, str]] = {}
    app: typer.Typer | None = None  # the root app, whose settings lazy commands take
    _listing = False

    def list_commands(self, ctx: click.Context) -> list[str]:
        names = super().list_commands(ctx)
        return [*names, *(n for n in self.lazy if n not in names)]

    def get_command(self, ctx: click.Context, cmd_name: str) -> click.Command | None:
        if cmd_name in self.lazy and cmd_name not in self.commands:
            spec = self.lazy[cmd_name]
            summary = source_help(spec) if self._listing else None
            if summary is not None:  # listed by its first paragraph, on one line
                short = " ".join(summary.split("\n\n")[0].split())
                listed = TyperCommand(name=cmd_name, help=summary, short_help=short)
                return tidy(listed, _markup(self._root(ctx)))
            root = self._root(ctx)
            self.commands[cmd_name] = load_command(cmd_name, spec, root or typer.Typer())
        command = super().get_command(ctx, cmd_name)
        return None if command is None else tidy(command, _markup(self._root(ctx)))

    @staticmethod
    def _root(ctx: click.Context) -> typer.Typer | None:
        return getattr(ctx.find_root().command, "app", None)

    def resolve_command(
        self, ctx: click.Context, args: list[str]
    ) -> tuple[str | None, click.Command | None, list[str]]:
        """Typer's, with the lazy commands among the suggestions for a mistyped name."""
        try:
            return super().resolve_command(ctx, args)
        except click.exceptions.UsageError as error:
            matches = get_close_matches(args[0], self.list_commands(ctx)) if args else []
            if self.suggest_commands and matches and "Did you mean" not in error.message:
                names = ", ".join(repr(m) for m in matches)
                error.message = f"{error.message.rstrip('.')}. Did you mean {names}?"
            raise

    def format_help(self, ctx: click.Context, formatter: Any) -> None:
        tidy(self, _markup(self._root(ctx)))
        self._listing = True
        try:
            super().format_help(ctx, formatter)
        finally:
            self._listing = False


def lazy_group(commands: Mapping[str, str]) -> type[LazyGroup]:
    """A group class for ``typer.Typer(cls=...)`` with these lazy commands (listed last)."""
    return type("LazyCommands", (LazyGroup,), {"lazy": dict(commands)})
