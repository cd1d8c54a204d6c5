"""The model store's versions and champion pointer: ids, promote, rollback, clear refusals."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from aitrader.errors import ConfigError
from aitrader.models.bundle_files import BundleError, write_files
from aitrader.models.store import CHAMPION, ModelStore, resolve_champion


def _bundle_dir(path: Path, tag: str) -> Path:
    """A directory with a bundle's files and manifest (contents are not read by the store)."""
    files = {"bundle.json": tag.encode(), "predictor.json": b"{}", "predictor.npz": b""}
    write_files(path, files)
    return path


def test_versions_promote_and_rollback(tmp_path: Path) -> None:
    store = ModelStore(tmp_path / "models")
    ids = [
        store.add_directory("btc", _bundle_dir(tmp_path / f"b{k}", str(k)), {}).id for k in range(3)
    ]
    assert ids == ["v0001", "v0002", "v0003"] and store.names() == ["btc"]
    assert store.champion("btc") is None
    assert resolve_champion(tmp_path / "b0") == tmp_path / "b0"  # a plain bundle is itself
    assert store.promote("btc", "v0001") is None
    assert store.promote("btc", "v0003") == "v0001"
    entry = tmp_path / "models" / "btc"
    assert resolve_champion(entry) == entry / "versions" / "v0003"  # --model entry: the champion
    with pytest.raises(ConfigError, match="already the champion"):
        store.promote("btc", "v0003")
    assert store.rollback("btc") == ("v0003", "v0001")
    with pytest.raises(ConfigError, match="no previous champion"):
        store.rollback("btc")
    pointer = json.loads((tmp_path / "models" / "btc" / CHAMPION).read_text())
    assert pointer["version"] == "v0001" and pointer["history"] == []
    leftovers = [p.name for p in (tmp_path / "models" / "btc").iterdir() if p.name.startswith(".")]
    assert leftovers == []  # the pointer is replaced by a rename, no temporary file stays


def test_clear_refusals(tmp_path: Path) -> None:
    store = ModelStore(tmp_path / "models")
    with pytest.raises(ConfigError, match=r"model name '\.\./x'"):
        store.versions("../x")
    with pytest.raises(ConfigError, match=r"no version 'v0009' \(stored: none\)"):
        store.promote("btc", "v0009")
    with pytest.raises(BundleError, match="not a model bundle"):
        store.add_directory("btc", tmp_path, {})
    assert store.versions("btc") == []  # a refused bundle claims no version
