"""The layout holds: ccxt is imported only by the ccxt venue, and the runtime runs without it."""

from __future__ import annotations

import ast
import subprocess
import sys
from pathlib import Path

import aitrader

SRC = Path(aitrader.__file__).parent


def _imports_ccxt(path: Path) -> bool:
    tree = ast.parse(path.read_text(encoding="utf-8"))
    for node in ast.walk(tree):
        names = []
        if isinstance(node, ast.Import):
            names = [a.name for a in node.names]
        elif isinstance(node, ast.ImportFrom) and node.module and node.level == 0:
            names = [node.module]
        if any(n == "ccxt" or n.startswith("ccxt.") for n in names):
            return True
    return False


def test_only_the_ccxt_venue_imports_ccxt() -> None:
    importers = sorted(str(p.relative_to(SRC)) for p in SRC.rglob("*.py") if _imports_ccxt(p))
    outside = [p for p in importers if not p.startswith("venues/ccxt/")]
    assert importers, "the ccxt venue imports ccxt"
    assert outside == []


def test_a_paper_replay_run_does_not_import_ccxt() -> None:
    code = (
        "import sys, aitrader.live.build, aitrader.live.runner, aitrader.venues.paper, "
        "aitrader.cli.live; print('ccxt' in sys.modules)"
    )
    out = subprocess.run(
        [sys.executable, "-c", code], capture_output=True, text=True, check=True, timeout=120
    )
    assert out.stdout.strip() == "False"
