"""Sequence model kinds on PyTorch (``pip install 'aitrader[deep]'``): ``lstm``, ``tcn``,
``transformer`` and ``cnn``, one module each, sharing :mod:`.base` (windows, training loop,
codec). Importing this package registers them; torch itself is imported only when a model is
fitted, predicts or is loaded from a bundle (:mod:`.nets`, :mod:`.train`).
"""

from aitrader.models.deep import cnn, lstm, tcn, transformer

__all__ = ["cnn", "lstm", "tcn", "transformer"]
