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


LEDGER = {"live/db.py", "live/schema.py"} | {
    str(p.relative_to(SRC)) for p in (SRC / "live").glob("ledger*.py")
}


def _uses_the_database(path: Path) -> bool:
    tree = ast.parse(path.read_text(encoding="utf-8"))
    for node in ast.walk(tree):
        if isinstance(node, ast.Import):
            if any(a.name.startswith(("sqlalchemy", "sqlite3")) for a in node.names):
                return True
        elif isinstance(node, ast.ImportFrom) and node.module:
            names = {a.name for a in node.names}
            if node.module.startswith(("sqlalchemy", "sqlite3", "aitrader.live.db")):
                return True
            if node.module.startswith(("aitrader.live.schema", "aitrader.live.ledger_sql")):
                return True
            if node.module == "aitrader.live" and names & {"schema", "db", "ledger_sql"}:
                return True
    return False


def test_only_the_ledger_touches_its_database() -> None:
    """The runner, the venues and everything else write the ledger through Ledger methods
    (the emulator's torture harness audits a ledger file from outside, read-only)."""
    users = sorted(str(p.relative_to(SRC)) for p in SRC.rglob("*.py") if _uses_the_database(p))
    assert "live/ledger.py" in users
    assert [u for u in users if u not in LEDGER] == ["emulator/torture.py"]
