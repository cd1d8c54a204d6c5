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
    """FinBERT (transformers) from a local directory: P(positive) − P(negative)."""

    name = "finbert"

    def __init__(self, directory: Path) -> None:
        if not (directory / "config.json").is_file():
            raise ConfigError(
                f"sentiment.finbert_dir {directory}: no FinBERT weights there (config.json "
                "missing); download them once (e.g. ProsusAI/finbert) into that directory"
            )
        try:
            from transformers import pipeline
        except ImportError:
            raise ConfigError(
                "sentiment.scorer finbert needs the transformers package: "
                "pip install transformers (or use scorer: vader)"
            ) from None
        os.environ.setdefault("HF_HUB_OFFLINE", "1")  # a local directory only, no hub calls
        self._pipe: Any = pipeline(
            "text-classification", model=str(directory), tokenizer=str(directory), top_k=None
        )

    def score(self, titles: Sequence[str]) -> np.ndarray:
        out = []
        for labels in self._pipe(list(titles), truncation=True):
            p = {d["label"].lower(): float(d["score"]) for d in labels}
            out.append(p.get("positive", 0.0) - p.get("negative", 0.0))
        return np.asarray(out, dtype=np.float64)


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
