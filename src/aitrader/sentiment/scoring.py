"""Headline sentiment in [-1, 1]: VADER (a lexicon, offline) by default; FinBERT only from a
local weights directory (``sentiment.finbert_dir``) — never downloaded at run time."""

from __future__ import annotations

import os
from collections.abc import Sequence
from pathlib import Path
from typing import Any, Protocol

import numpy as np

from aitrader.errors import ConfigError
from aitrader.sentiment.config import SentimentConfig


class Scorer(Protocol):
    """Scores headlines in [-1 (negative), 1 (positive)]."""

    name: str

    def score(self, titles: Sequence[str]) -> np.ndarray: ...


class VaderScorer:
    """VADER's compound score (vaderSentiment, a rule-based lexicon)."""

    name = "vader"

    def __init__(self) -> None:
        from vaderSentiment.vaderSentiment import SentimentIntensityAnalyzer

        self._analyzer = SentimentIntensityAnalyzer()

    def score(self, titles: Sequence[str]) -> np.ndarray:
        return np.array([self._analyzer.polarity_scores(t)["compound"] for t in titles], float)


class FinBertScorer:
    """FinBERT (transformers) from a local directory: P(positive) − P(negative) per headline.

    The directory holds what ``save_pretrained`` writes (or a hub snapshot such as
    ProsusAI/finbert): ``config.json`` with ``positive``/``negative`` among its labels, the
    weights and the tokenizer (``vocab.txt`` or ``tokenizer.json``). It is read with
    ``local_files_only`` and ``HF_HUB_OFFLINE``: nothing is fetched from the network.
    """

    name = "finbert"

    def __init__(self, directory: Path, batch_size: int = 32) -> None:
        self._tokenizer, self._model = _load_finbert(directory)
        self._batch = batch_size
        labels = {str(v).lower(): int(k) for k, v in self._model.config.id2label.items()}
        if "positive" not in labels or "negative" not in labels:
            raise ConfigError(
                f"sentiment.finbert_dir {directory}: the model's labels are "
                f"{sorted(labels)}, not FinBERT's positive/negative/neutral"
            )
        self._positive, self._negative = labels["positive"], labels["negative"]
        limits = (self._tokenizer.model_max_length, self._model.config.max_position_embeddings)
        self._max_length = int(min(limits))  # a vocab.txt-only tokenizer knows no limit

    def score(self, titles: Sequence[str]) -> np.ndarray:
        import torch

        out = [np.empty(0)]
        for start in range(0, len(titles), self._batch):
            batch = list(titles[start : start + self._batch])
            encoded = self._tokenizer(
                batch,
                padding=True,
                truncation=True,
                max_length=self._max_length,
                return_tensors="pt",
            )
            with torch.inference_mode():
                proba = self._model(**encoded).logits.double().softmax(dim=-1).numpy()
            out.append(proba[:, self._positive] - proba[:, self._negative])
        return np.concatenate(out).astype(np.float64)


def _load_finbert(directory: Path) -> tuple[Any, Any]:
    """The tokenizer and the model (eval mode) from ``directory`` only; a ConfigError naming
    the directory when it is missing, incomplete or unreadable."""
    _check_files(directory)
    os.environ.setdefault("HF_HUB_OFFLINE", "1")  # a local directory only, no hub calls
    try:
        from transformers import AutoModelForSequenceClassification, AutoTokenizer
        from transformers.utils import logging as hf_logging
    except ImportError:
        raise ConfigError(
            "sentiment.scorer finbert needs the transformers package: "
            "pip install 'aitrader[finbert]' (or use scorer: vader)"
        ) from None
    hf_logging.disable_progress_bar()
    try:
        tokenizer = AutoTokenizer.from_pretrained(directory, local_files_only=True)
        model, info = AutoModelForSequenceClassification.from_pretrained(
            directory, local_files_only=True, output_loading_info=True
        )
    except Exception as exc:  # OSError, ValueError, safetensors' own error: all "unreadable"
        raise ConfigError(
            f"sentiment.finbert_dir {directory}: cannot load FinBERT from there: {exc}"
        ) from exc
    lacking = sorted({*info["missing_keys"], *(k[0] for k in info["mismatched_keys"])})
    if lacking:  # transformers would fill them with random values and only warn
        raise ConfigError(
            f"sentiment.finbert_dir {directory}: the weights lack or do not fit "
            f"{', '.join(lacking[:5])}: not a FinBERT sequence classifier"
        )
    return tokenizer, model.eval()


def _check_files(directory: Path) -> None:
    if not directory.is_dir():
        raise ConfigError(f"sentiment.finbert_dir {directory}: no such directory")
    if not (directory / "config.json").is_file():
        raise ConfigError(
            f"sentiment.finbert_dir {directory}: no FinBERT weights there (config.json "
            "missing); download them once (e.g. ProsusAI/finbert) into that directory"
        )
    if not any((directory / name).is_file() for name in ("vocab.txt", "tokenizer.json")):
        raise ConfigError(
            f"sentiment.finbert_dir {directory}: no tokenizer there (vocab.txt or "
            "tokenizer.json missing)"
        )


def make_scorer(config: SentimentConfig) -> Scorer:
    """The configured scorer (ConfigError saying what to set for FinBERT)."""
    if config.scorer == "vader":
        return VaderScorer()
    if config.finbert_dir is None:
        raise ConfigError(
            "sentiment.scorer finbert needs sentiment.finbert_dir: a local directory holding "
            "the FinBERT weights (aitrader never downloads model weights at run time); "
            "or use scorer: vader"
        )
    return FinBertScorer(Path(config.finbert_dir).expanduser())
