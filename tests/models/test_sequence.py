"""The PyTorch sequence kinds: causal windows, a learnable planted pattern, no edge on noise,
exact bundles, seeded determinism, and torch kept out of light imports."""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd
import pytest
from scipy.stats import binomtest

from aitrader.errors import ConfigError, DataError
from aitrader.models import kinds
from aitrader.models.baselines import MajorityModel
from aitrader.models.bundle_files import BundleError, predictor_files, read_predictor
from aitrader.models.config import ModelConfig
from aitrader.models.factory import make_model
from aitrader.models.predictor import Predictor

SEQUENCE = ["lstm", "tcn", "transformer", "cnn"]
TINY: dict[str, Any] = {"window": 8, "hidden": 8, "epochs": 3, "purge": 4, "batch_size": 64}
EXTRA = {"tcn": {"levels": 1}, "transformer": {"heads": 2}}


def config(kind: str, seed: int = 42, **changes: Any) -> ModelConfig:
    params = TINY | EXTRA.get(kind, {}) | changes
    return ModelConfig.model_validate({"kind": kind, "seed": seed, kind: params})


def planted(n: int, lag: int = 3, noise: float = 0.1, seed: int = 0) -> tuple[pd.DataFrame, Any]:
    """Labels set by the sign of column ``a`` ``lag`` rows earlier (flipped with probability
    ``noise``): invisible to a model that reads one row, learnable from a window."""
    rng = np.random.default_rng(seed)
    x = rng.normal(size=(n, 4))
    y = np.where(np.roll(x[:, 0], lag) > 0, 1.0, -1.0)
    y[rng.random(n) < noise] *= -1
    y[:lag] = 1.0
    index = pd.date_range("2024-01-01", periods=n, freq="1h", tz="UTC")
    return pd.DataFrame(x, columns=list("abcd"), index=index), y


def random_walk(n: int, seed: int = 1) -> tuple[pd.DataFrame, Any]:
    """Features are lagged returns of a random walk and labels its next move: no edge."""
    rng = np.random.default_rng(seed)
    returns = rng.normal(size=n + 5)
    x = np.column_stack([returns[4 - k : n + 4 - k] for k in range(4)])
    y = np.where(returns[5:] > 0, 1.0, -1.0)
    return pd.DataFrame(x, columns=list("abcd")), y


def fit_and_score(kind: str, X: pd.DataFrame, y: Any) -> tuple[int, float]:
    """Hits on the last 600 rows after training on the 1800 before (windows reach back into
    training), and the majority class's training rate."""
    changes = {"epochs": 12, "hidden": 16, "learning_rate": 3e-3, "patience": 4}
    model = make_model(config(kind, **changes)).fit(X.iloc[:1800], y[:1800])
    hits = int(np.sum(model.predict(X.iloc[1600:])[200:] == y[1800:]))
    majority = MajorityModel().fit(X.iloc[:1800], y[:1800])
    return hits, float(np.max(majority.prior_))


@pytest.mark.slow
@pytest.mark.parametrize("kind", ["lstm", "tcn"])
def test_finds_a_planted_pattern_out_of_sample(kind: str) -> None:
    hits, base = fit_and_score(kind, *planted(2400))
    assert hits / 600 > base + 0.15, (hits, base)  # 90 % learnable; the majority ~50 %
    assert binomtest(hits, 600, base, alternative="greater").pvalue < 1e-6


@pytest.mark.slow
@pytest.mark.parametrize("kind", ["lstm", "tcn"])
def test_no_edge_on_a_random_walk(kind: str) -> None:
    hits, base = fit_and_score(kind, *random_walk(2400))
    assert binomtest(hits, 600, base, alternative="greater").pvalue > 0.01, (hits, base)


@pytest.mark.parametrize("kind", SEQUENCE)
def test_same_seed_same_probabilities_other_seed_others(kind: str) -> None:
    X, y = planted(300)
    first = make_model(config(kind)).fit(X, y).predict_proba(X)
    again = make_model(config(kind)).fit(X, y).predict_proba(X)
    other = make_model(config(kind, seed=7)).fit(X, y).predict_proba(X)
    np.testing.assert_array_equal(first, again)
    assert not np.array_equal(first, other)


def _chain(kind: str) -> tuple[Predictor, pd.DataFrame]:
    X, y = planted(300)
    model = make_model(config(kind)).fit(X, y)
    return Predictor(tuple(X.columns), model.classes_, model, None, None), X


@pytest.mark.parametrize("kind", SEQUENCE)
def test_bundle_files_are_arrays_and_json_and_predict_identically(
    kind: str, tmp_path: Path
) -> None:
    chain, X = _chain(kind)
    files = predictor_files(chain)
    assert {"model.json", "model.npz"} <= set(files) and not any(n.endswith(".pkl") for n in files)
    loaded = read_predictor(tmp_path, files, trust=False)
    np.testing.assert_array_equal(loaded.predict_proba(X), chain.predict_proba(X))
    assert loaded.model.best_epoch_ == chain.model.best_epoch_
    assert not kinds.get(kind).codec.executable


def test_weights_that_do_not_fit_the_network_are_refused(tmp_path: Path) -> None:
    chain, _ = _chain("lstm")
    files = predictor_files(chain)
    wider = make_model(config("lstm", hidden=12)).fit(*planted(300))
    files["model.npz"] = predictor_files(Predictor(("a",), chain.classes, wider, None, None))[
        "model.npz"
    ]
    with pytest.raises(BundleError, match="cannot read the lstm model files"):
        read_predictor(tmp_path, files)


def test_predictions_with_context_equal_the_whole_series() -> None:
    """What walk-forward predicts for a test block (given the rows before it) equals the
    batch prediction over the whole series that backtests and scans use."""
    chain, X = _chain("tcn")
    rows = np.arange(200, 260)
    np.testing.assert_array_equal(chain.proba_at(X, rows), chain.predict_proba(X)[rows])
    cut = chain.predict_proba(X.iloc[rows])  # without context the first window is padded
    assert not np.array_equal(cut[:7], chain.predict_proba(X)[rows][:7])
    np.testing.assert_array_equal(cut[7:], chain.predict_proba(X)[rows][7:])


def test_clear_errors() -> None:
    X, y = planted(300)
    with pytest.raises(DataError, match="too few for a validation slice"):
        make_model(config("lstm")).fit(X.iloc[:25], y[:25])
    broken = X.copy()
    broken.iloc[5, 2] = np.nan
    with pytest.raises(DataError, match=r"1 feature row\(s\) hold NaN/inf \(first at row 5"):
        make_model(config("cnn")).fit(broken, y)
    with pytest.raises(ValueError, match="receptive field 29 bars"):
        kinds.get("tcn").validate_params({"window": 16, "levels": 3})
    with pytest.raises(ValueError, match="hidden 10 is not divisible by heads 4"):
        kinds.get("transformer").validate_params({"hidden": 10, "heads": 4})
    if not _cuda():
        with pytest.raises(DataError, match="no CUDA device"):
            make_model(config("lstm", device="cuda")).fit(X, y)


def _cuda() -> bool:
    import torch

    return bool(torch.cuda.is_available())


def test_missing_torch_names_the_deep_extra(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setitem(sys.modules, "torch", None)
    with pytest.raises(ConfigError, match=r"pip install 'aitrader\[deep\]'"):
        make_model(config("lstm"))


def test_kind_modules_do_not_import_torch() -> None:
    code = (
        "import sys\nfrom aitrader.models import kinds\nnames = kinds.names()\n"
        "assert {'lstm', 'tcn', 'transformer', 'cnn'} <= set(names), names\n"
        "assert 'torch' not in sys.modules\n"
    )
    subprocess.run([sys.executable, "-c", code], check=True, timeout=120)
