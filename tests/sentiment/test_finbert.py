"""FinBERT scoring through the real transformers library, from a tiny BERT classifier that the
test builds and saves with FinBERT's layout and labels (nothing is downloaded): the score is
P(positive) − P(negative) of the model, batched as one by one, stored by ``aitrader news fetch``
and read by the ``news_sentiment`` feature."""

from __future__ import annotations

import json
import re
import shutil
import socket
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd
import pytest
import yaml
from typer.testing import CliRunner

from aitrader.cli import app
from aitrader.errors import ConfigError
from aitrader.features.featureset import build_features
from aitrader.features.spec import FeatureSpec
from aitrader.sentiment.config import SentimentConfig
from aitrader.sentiment.scoring import FinBertScorer, make_scorer

SPECIAL = ["[PAD]", "[UNK]", "[CLS]", "[SEP]", "[MASK]"]
WORDS = re.findall(
    r"\w+",
    "bitcoin surges record high investors cheer strong gains exchange hacked millions stolen "
    "crypto prices crash regulators approve clear framework markets rally ethereum upgrade "
    "delayed fears critical bug",
)
FINBERT_LABELS = {0: "positive", 1: "negative", 2: "neutral"}  # ProsusAI/finbert's id2label
MAX_POSITIONS = 24
TOL = 1e-5  # float32 inference; padding a batch moves the sums in the last digits
TITLES = [
    "Bitcoin surges to a record high as investors cheer strong gains",
    "Exchange hacked, millions stolen as crypto prices crash",
    "Regulators approve a clear crypto framework; markets rally",
    "",
    "crash " * 60,  # longer than the model's 24 positions: truncated, not an index error
]


@dataclass(frozen=True)
class Tiny:
    """A saved tiny BERT classifier, and the model and tokenizer that were saved."""

    directory: Path
    model: Any
    tokenizer: Any


def build(directory: Path, labels: dict[int, str], seed: int = 7) -> Tiny:
    """A 2-layer BERT (width 16) with seeded, wide random weights, saved with its vocab."""
    import torch
    from transformers import BertConfig, BertForSequenceClassification, BertTokenizer

    directory.mkdir(parents=True)
    vocab = directory / "vocab.txt"
    vocab.write_text("\n".join(SPECIAL + WORDS) + "\n", encoding="utf-8")
    torch.manual_seed(seed)
    config = BertConfig(
        vocab_size=len(SPECIAL) + len(WORDS),
        hidden_size=16,
        num_hidden_layers=2,
        num_attention_heads=2,
        intermediate_size=32,
        max_position_embeddings=MAX_POSITIONS,
        num_labels=len(labels),
        id2label=labels,
        label2id={v: k for k, v in labels.items()},
        initializer_range=0.5,  # far from uniform probabilities
    )
    model = BertForSequenceClassification(config).eval()
    model.save_pretrained(directory)
    tokenizer = BertTokenizer(vocab=str(vocab))
    tokenizer.save_pretrained(directory)
    return Tiny(directory, model, tokenizer)


@pytest.fixture(scope="module")
def tiny(tmp_path_factory: pytest.TempPathFactory) -> Tiny:
    return build(tmp_path_factory.mktemp("weights") / "finbert", FINBERT_LABELS)


def expected(tiny: Tiny, title: str) -> float:
    """P(positive) − P(negative) from the in-memory model, one headline, softmax by hand."""
    import torch

    ids = tiny.tokenizer(title, truncation=True, max_length=MAX_POSITIONS, return_tensors="pt")
    with torch.no_grad():
        logits = tiny.model(**ids).logits[0].double().numpy()
    p = np.exp(logits - logits.max())
    p /= p.sum()
    return float(p[0] - p[1])


def test_score_is_p_positive_minus_p_negative_of_the_saved_model(tiny: Tiny) -> None:
    scorer = make_scorer(SentimentConfig(scorer="finbert", finbert_dir=tiny.directory))
    assert scorer.name == "finbert"
    scores = scorer.score(TITLES)
    assert scores.shape == (len(TITLES),) and scores.dtype == np.float64
    assert np.all((scores >= -1) & (scores <= 1))
    np.testing.assert_allclose(scores, [expected(tiny, t) for t in TITLES], rtol=0, atol=TOL)
    assert np.ptp(scores) > 0.1  # the headlines get different scores
    assert scorer.score([]).shape == (0,)


def test_batches_score_like_one_headline_at_a_time(tiny: Tiny) -> None:
    titles = TITLES * 3
    whole = FinBertScorer(tiny.directory).score(titles)
    single = FinBertScorer(tiny.directory, batch_size=1).score(titles)
    uneven = FinBertScorer(tiny.directory, batch_size=4).score(titles)
    np.testing.assert_allclose(whole, single, rtol=0, atol=TOL)
    np.testing.assert_allclose(uneven, single, rtol=0, atol=TOL)


def test_a_hub_snapshot_layout_loads_too(tiny: Tiny, tmp_path: Path) -> None:
    """ProsusAI/finbert's files: pytorch_model.bin, vocab.txt, tokenizer_config.json (a
    512-token limit above the model's positions), no tokenizer.json."""
    import torch

    snapshot = tmp_path / "snapshot"
    snapshot.mkdir()
    for name in ("config.json", "vocab.txt"):
        shutil.copy(tiny.directory / name, snapshot / name)
    config = {"do_lower_case": True, "model_max_length": 512}
    (snapshot / "tokenizer_config.json").write_text(json.dumps(config), encoding="utf-8")
    torch.save(tiny.model.state_dict(), snapshot / "pytorch_model.bin")
    scores = FinBertScorer(snapshot).score(TITLES)
    np.testing.assert_allclose(scores, [expected(tiny, t) for t in TITLES], rtol=0, atol=TOL)


def test_loads_and_scores_without_touching_the_network(
    tiny: Tiny, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("HF_HUB_OFFLINE", "0")  # local_files_only alone keeps the hub away
    attempts: list[object] = []

    def refuse(*args: object, **kwargs: object) -> None:
        attempts.append(args)
        raise OSError("network use in a test")

    monkeypatch.setattr(socket.socket, "connect", refuse)
    monkeypatch.setattr(socket, "create_connection", refuse)
    monkeypatch.setattr(socket, "getaddrinfo", refuse)
    scores = FinBertScorer(tiny.directory).score(TITLES[:2])
    assert attempts == []
    assert scores[0] == pytest.approx(expected(tiny, TITLES[0]), abs=TOL)


def test_news_fetch_stores_finbert_scores_that_the_feature_reads(
    tiny: Tiny, server: str, tmp_path: Path
) -> None:
    store = tmp_path / "news.jsonl"
    feeds = [{"url": f"{server}{p}"} for p in ("/rss.xml", "/atom.xml", "/api/posts/")]
    section = {"feeds": feeds, "store": str(store), "scorer": "finbert"}
    config = tmp_path / "aitrader.yaml"
    config.write_text(yaml.safe_dump({"sentiment": section | {"finbert_dir": str(tiny.directory)}}))
    done = CliRunner().invoke(app, ["--config", str(config), "news", "fetch", "--json"])
    assert done.exit_code == 0, done.output
    assert [f["added"] for f in json.loads(done.stdout)["feeds"]] == [2, 1, 1]
    records = [json.loads(line) for line in store.read_text().splitlines()]
    assert {r["scorer"] for r in records} == {"finbert"}
    for record in records:
        assert record["score"] == pytest.approx(expected(tiny, record["title"]), abs=TOL)

    index = pd.date_range("2021-03-01 09:00", periods=9, freq="1h", tz="UTC", name="timestamp")
    close = np.linspace(100.0, 108.0, 9)
    candles = pd.DataFrame(
        {"open": close, "high": close + 1, "low": close - 1, "close": close, "volume": 1.0},
        index=index,
    )
    spec = FeatureSpec(name="news_sentiment", params={"store": str(store), "lag_minutes": 5})
    frame = build_features(candles, [spec], timeframe="1h").frame
    # published 10:30, 11:10, 14:00 and 15:45 UTC (+5 min): all four are seen from 16:00
    assert frame["news_count_24h"].tolist() == [0, 0, 1, 2, 2, 2, 3, 4, 4]
    mean = np.mean([r["score"] for r in records])
    assert frame["news_mean_24h"].iloc[-1] == pytest.approx(mean, abs=1e-12)


def _refused(directory: Path, message: str) -> None:
    """make_scorer refuses ``directory`` with ``sentiment.finbert_dir DIR: message...``."""
    expected = re.escape(f"sentiment.finbert_dir {directory}: {message}")
    with pytest.raises(ConfigError, match=expected):
        make_scorer(SentimentConfig(scorer="finbert", finbert_dir=directory))


def test_missing_or_broken_weights_are_clear_errors(tiny: Tiny, tmp_path: Path) -> None:
    import torch

    _refused(tmp_path / "nowhere", "no such directory")
    corrupt = tmp_path / "corrupt"
    shutil.copytree(tiny.directory, corrupt)
    (corrupt / "model.safetensors").write_bytes(b"not a safetensors file")
    _refused(corrupt, "cannot load FinBERT from there")
    (corrupt / "config.json").write_text("{not json", encoding="utf-8")
    _refused(corrupt, "cannot load FinBERT from there")
    headless = tmp_path / "headless"  # e.g. plain BERT weights under FinBERT's config
    shutil.copytree(tiny.directory, headless)
    (headless / "model.safetensors").unlink()
    body = {k: v for k, v in tiny.model.state_dict().items() if not k.startswith("classifier")}
    torch.save(body, headless / "pytorch_model.bin")
    _refused(headless, "the weights lack or do not fit classifier.bias, classifier.weight")
    no_vocab = tmp_path / "no_vocab"
    shutil.copytree(tiny.directory, no_vocab)
    (no_vocab / "vocab.txt").unlink()
    (no_vocab / "tokenizer.json").unlink()
    _refused(no_vocab, "no tokenizer there")


def test_a_classifier_without_finbert_labels_is_refused(tmp_path: Path) -> None:
    other = build(tmp_path / "stars", {0: "LABEL_0", 1: "LABEL_1"})
    with pytest.raises(ConfigError, match=r"labels are \['label_0', 'label_1'\], not FinBERT"):
        FinBertScorer(other.directory)
