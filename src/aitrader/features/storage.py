"""Feature matrices on disk: ``<data dir>/features/<dataset>/<spec hash>.parquet``, written
atomically (temp file + fsync + rename) with the spec and warm-up in the Parquet footer.
"""

from __future__ import annotations

import json
import os
import uuid
from pathlib import Path
from typing import Any
from urllib.parse import quote

import pandas as pd
import pyarrow as pa
import pyarrow.parquet as pq

from aitrader.errors import StoreError
from aitrader.features.featureset import FeatureMatrix
from aitrader.features.spec import SPEC_VERSION, FeatureSpec, canonical_specs

META_KEY = b"aitrader.features"


def dataset_dirname(dataset: str) -> str:
    """A file-system-safe directory name for ``sample:NAME`` or ``exchange:SYMBOL:tf``."""
    return "__".join(quote(part, safe="") for part in dataset.split(":"))


def matrix_path(data_dir: Path | str, dataset: str, spec_hash: str) -> Path:
    """Where the matrix of ``dataset`` built with the spec ``spec_hash`` lives."""
    return (
        Path(data_dir).expanduser() / "features" / dataset_dirname(dataset) / f"{spec_hash}.parquet"
    )


def write_matrix(matrix: FeatureMatrix, path: Path, dataset: str, specs: list[FeatureSpec]) -> Path:
    """Write ``matrix`` to ``path`` atomically; an interrupted write leaves any old file intact."""
    meta: dict[str, Any] = {
        "dataset": dataset,
        "spec_hash": matrix.spec_hash,
        "spec_version": SPEC_VERSION,
        "features": canonical_specs(specs),
        "dropped_warmup": matrix.dropped_warmup,
        "rows": len(matrix.frame),
        "columns": matrix.columns,
    }
    table = pa.Table.from_pandas(matrix.frame, preserve_index=True)
    table = table.replace_schema_metadata(
        {**(table.schema.metadata or {}), META_KEY: json.dumps(meta).encode()}
    )
    path.parent.mkdir(parents=True, exist_ok=True)
    tmp = path.with_name(f".{path.name}.{uuid.uuid4().hex}.tmp")
    try:
        with open(tmp, "wb") as handle:
            pq.write_table(table, handle, compression="zstd")
            handle.flush()
            os.fsync(handle.fileno())
        os.replace(tmp, path)
    except OSError as exc:
        raise StoreError(f"{path}: could not write the feature matrix ({exc})") from exc
    finally:
        tmp.unlink(missing_ok=True)
    return path


def read_matrix(path: Path) -> tuple[pd.DataFrame, dict[str, Any]]:
    """A stored feature matrix and its metadata (spec, hash, dropped warm-up)."""
    try:
        table = pq.read_table(path)
    except (OSError, pa.ArrowException) as exc:
        raise StoreError(f"{path}: unreadable feature matrix ({exc})") from exc
    raw = (table.schema.metadata or {}).get(META_KEY)
    meta: dict[str, Any] = json.loads(raw) if raw else {}
    return table.to_pandas(), meta
