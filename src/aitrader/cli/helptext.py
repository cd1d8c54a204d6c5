"""Help text that reads well at any terminal width: the sources' wrapping undone, markup plain.

Docstrings and ``help=`` strings are hard-wrapped at ~100 columns in the source, and Typer's
``rich`` markup mode keeps every source line break after the first paragraph, so an 80-column
terminal showed lines broken mid-sentence. :func:`reflow` joins the lines of each paragraph (Rich
then wraps them to the terminal), keeps blank-line paragraph breaks, keeps list items, indented
lines and lines starting with ``Example`` or ``$`` on lines of their own, turns reST literals and
roles into plain backticked code and escapes square brackets, which Rich markup would otherwise
swallow (``aitrader[dashboard]``, ``[default: 1m]``). Typer's ``markdown`` mode would reflow too,
but it eats ``<NAME>`` and ``__X__`` in help texts.

:func:`tidy` applies it to a command tree once, where commands are registered
(:mod:`aitrader.cli.lazy`), so no command needs its docstring written for the terminal.
"""

from __future__ import annotations

import inspect
import re
from typing import Any

from rich.markup import escape

_ROLE = re.compile(r":(?:[\w.-]+:)?[\w.-]+:`~?(?:([^`<]*?)\s*<[^`>]*>|([^`]*))`")
_LITERAL = re.compile(r"``(.+?)``")
_OWN_LINE = re.compile(r"(?:[-*+•]|\d+[.)]|\$)\s|Examples?\b")
_ITEM = re.compile(r"(?:[-*+•]|\d+[.)])\s")
_DONE = "_aitrader_help_tidy"


def plain(text: str) -> str:
    """reST ``` ``x`` ``` and ``:role:`x``` as plain ``x`` in backticks (rich shows it as is)."""
    text = _ROLE.sub(lambda m: f"`{m.group(1) or m.group(2)}`", text)
    return _LITERAL.sub(r"`\1`", text)


def _paragraph(lines: list[str]) -> list[str]:
    """The paragraph's lines joined, except where a line must stay on a line of its own."""
    out: list[str] = []
    kind = "text"
    for line in lines:
        body = line.strip()
        indented = line[:1].isspace()
        if _OWN_LINE.match(body) or not out:
            kind = "item" if _ITEM.match(body) else "verbatim" if indented else "text"
            out.append(line.rstrip())
        elif indented and kind != "item":
            kind = "verbatim"  # an example or code line: kept as written
            out.append(line.rstrip())
        elif kind == "verbatim":
            kind = "text"
            out.append(body)
        else:
            out[-1] = f"{out[-1]} {body}"
    return out


def reflow(text: str, markup: bool = True) -> str:
    """``text`` with each paragraph on one line (see the module doc); ``markup``: escape the
    square brackets for Rich markup. Text after a ``\\f`` line (hidden by click) is left alone."""
    shown, cut, hidden = inspect.cleandoc(text).partition("\f")
    body = shown.rstrip()
    paragraphs = []
    for paragraph in re.split(r"\n\s*\n", body):
        if paragraph.startswith("\b"):  # click's "do not rewrap" marker
            paragraphs.append(paragraph)
            continue
        paragraphs.append("\n".join(_paragraph(paragraph.split("\n"))))
    result = plain("\n\n".join(paragraphs))
    return (escape(result) if markup else result) + shown[len(body) :] + cut + hidden


def _tidy_text(value: Any, markup: bool) -> Any:
    return reflow(value, markup) if isinstance(value, str) and value else value


def tidy(command: Any, markup: bool = True) -> Any:
    """Reflow the help of ``command``, its parameters and (for a group) its sub-commands, in
    place and once; returns ``command``."""
    if getattr(command, _DONE, False):
        return command
    setattr(command, _DONE, True)
    for attribute in ("help", "short_help", "epilog"):
        if hasattr(command, attribute):
            setattr(command, attribute, _tidy_text(getattr(command, attribute), markup))
    for param in getattr(command, "params", []):
        if hasattr(param, "help"):
            param.help = _tidy_text(param.help, markup)
    for sub in getattr(command, "commands", {}).values():
        tidy(sub, markup)
    return command
