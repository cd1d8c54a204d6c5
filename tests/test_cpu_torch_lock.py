"""tools/cpu_torch_lock.py: the CUDA runtime PyPI's torch metadata pulls leaves the lock file."""

from __future__ import annotations

import importlib.util
from pathlib import Path

LOCK = """\
filelock==4.3.2
    # via torch
nvidia-cublas==13.1.1.3
    # via
    #   nvidia-cudnn-cu13
    #   torch
sympy==1.14.0
    # via torch
torch==2.13.0
    # via aitrader
triton==3.7.1
    # via torch
"""


def test_cuda_only_packages_and_their_via_lines_are_dropped(tmp_path: Path) -> None:
    path = Path(__file__).parents[1] / "tools" / "cpu_torch_lock.py"
    spec = importlib.util.spec_from_file_location("cpu_torch_lock", path)
    assert spec is not None and spec.loader is not None
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    lock = tmp_path / "dev.lock"
    lock.write_text(LOCK, encoding="utf-8")
    module.main(str(lock))
    assert lock.read_text(encoding="utf-8") == (
        "filelock==4.3.2\n    # via torch\nsympy==1.14.0\n    # via torch\n"
        "torch==2.13.0\n    # via aitrader\n"
    )
