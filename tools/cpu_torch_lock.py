"""Drop the CUDA runtime that PyPI's torch metadata pulls from a compiled lock file.

``torch==2.13.0`` resolves on PyPI to the CUDA build, whose metadata asks for ``nvidia-*``,
``cuda-*`` and ``triton`` wheels (several GB). The machines this project installs on take the
CPU build of the same version (``torch==2.13.0`` matches ``2.13.0+cpu``), which needs none of
them, so they are removed from the lock (with their ``# via`` lines); ``pip check`` after the
install proves nothing required is missing.

Usage: ``python tools/cpu_torch_lock.py requirements/dev.lock``
"""

from __future__ import annotations

import re
import sys
from pathlib import Path

CUDA_ONLY = re.compile(r"^(nvidia-[a-z0-9-]+|cuda-[a-z0-9-]+|triton)==", re.IGNORECASE)


def strip(text: str) -> tuple[str, list[str]]:
    """The lock text without the CUDA-only packages, and their names."""
    kept: list[str] = []
    dropped: list[str] = []
    skipping = False
    for line in text.splitlines(keepends=True):
        if not line.startswith((" ", "\t")):
            skipping = bool(CUDA_ONLY.match(line))
            if skipping:
                dropped.append(line.split("==")[0])
        if not skipping:
            kept.append(line)
    return "".join(kept), dropped


def main(path: str) -> None:
    lock = Path(path)
    text, dropped = strip(lock.read_text(encoding="utf-8"))
    lock.write_text(text, encoding="utf-8")
    print(f"{lock}: dropped {len(dropped)} CUDA-only packages" if dropped else f"{lock}: ok")


if __name__ == "__main__":
    main(sys.argv[1])
