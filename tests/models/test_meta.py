"""The meta-agent kind: config, out-of-fold discipline, combiners, gate, regimes, bundles."""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path
from types import SimpleNamespace
from typing import Any, Self

import numpy as np
import pandas as pd
import pytest

from aitrader.errors import ConfigError, DataError
from aitrader.frozen import Frozen
from aitrader.models import kinds
from aitrader.models.base import ArrayLike, ClassifierBase, as_matrix, check_training
from aitrader.models.bundle_files import BundleError
from aitrader.models.codecs import AttributesCodec
from aitrader.models.config import ModelConfig
from aitrader.models.factory import make_model
from aitrader.models.meta import MetaModel, MetaParams
from aitrader.models.meta_combine import Stacker, disagreement, skill_weights, tune_gate
from aitrader.models.predictor import Predictor
from aitrader.models.registry import BundleInfo, ModelBundle, load_bundle, save_bundle

SEEN: list[int] = []


class SpyParams(Frozen):
    """No parameters."""


class RowSpy(ClassifierBase):
    """Records the last training row (feature ``row``) and predicts its training frequencies;
    its regime probabilities are a soft split of feature ``x`` at 0."""

    def fit(self, X: ArrayLike, y: ArrayLike) -> Self:
        features, labels = check_training(X, y)
        SEEN.append(int(features[:, 0].max()))
        self.classes_, counts = np.unique(labels, return_counts=True)
        self.prior_ = counts / counts.sum()
        return self

    def predict_proba(self, X: ArrayLike) -> np.ndarray:
        return np.tile(self.prior_, (as_matrix(X).shape[0], 1))

    def regime_proba(self, X: ArrayLike) -> np.ndarray:
        high = 1.0 / (1.0 + np.exp(-4.0 * as_matrix(X)[:, 1]))
        return np.column_stack([1.0 - high, high])


@pytest.fixture()
def spy() -> Iterator[None]:
    kind = kinds.ModelKind(
        name="rowspy",
        summary="test kind",
        estimator=RowSpy,
        params=SpyParams,
        codec=AttributesCodec(("classes_", "prior_")),
        raw_features=True,
    )
    kinds.register(kind, replace=True)
    SEEN.clear()
    try:
        yield
    finally:
        kinds.unregister("rowspy")


def planted(n: int = 3000, seed: int = 0) -> tuple[pd.DataFrame, np.ndarray]:
    """Feature ``x`` predicts the binary label (70 % hit rate); ``noise`` does not."""
    rng = np.random.default_rng(seed)
    x = rng.normal(size=n)
    y = np.where(rng.random(n) < 0.7, x > 0, x <= 0).astype(float)
    frame = pd.DataFrame({"row": np.arange(n, dtype=float), "x": x, "noise": rng.normal(size=n)})
    return frame, y


def meta(**params: Any) -> MetaModel:
    config = ModelConfig.model_validate({"kind": "meta", "meta": params})
    model = make_model(config)
    assert isinstance(model, MetaModel)
    return model


def test_config_names_unknown_agents_and_refuses_nesting() -> None:
    with pytest.raises(ValueError, match="unknown model kind 'nope'"):
        ModelConfig.model_validate({"kind": "meta", "meta": {"agents": ["nope"]}})
    with pytest.raises(ValueError, match="cannot be an agent of another meta-agent"):
        ModelConfig.model_validate({"kind": "meta", "meta": {"agents": ["meta"]}})
    with pytest.raises(ValueError, match="n_estimators"):
        MetaParams.model_validate({"agents": [{"kind": "lightgbm", "params": {"n_estimators": 0}}]})
    with pytest.raises(ValueError, match="regime_agent 'hmm' is not one of the agents"):
        MetaParams.model_validate({"agents": ["logistic"], "regime_agent": "hmm"})
    names = MetaParams.model_validate({"agents": ["logistic", "logistic", "majority"]}).names()
    assert names == ["logistic", "logistic_2", "majority"]


def test_agents_and_stacker_see_only_out_of_fold_rows(
    spy: None, monkeypatch: pytest.MonkeyPatch
) -> None:
    fitted_rows: list[int] = []
    original = Stacker.fit

    def recording(self: Stacker, views: np.ndarray, codes: np.ndarray) -> Stacker:
        fitted_rows.append(views.shape[0])
        return original(self, views, codes)

    monkeypatch.setattr(Stacker, "fit", recording)
    frame, y = planted(1200)
    model = meta(agents=["rowspy"], combiner="stack", inner_folds=3, purge_rows=10)
    model.fit(frame, y)
    # blocks start at rows 600, 800, 1000: the agent trained on rows < start - purge, then all
    assert SEEN == [589, 789, 989, 1199]
    assert fitted_rows == [600]  # the stacker: the three out-of-fold blocks only


def test_skilled_agent_outweighs_the_climatology() -> None:
    frame, y = planted()
    model = meta(agents=["logistic", "majority"], gate="off").fit(frame[["x", "noise"]], y)
    weights = model.weights_[0]
    assert weights[0] > 0.9 and model.skills_[0] > 0.05
    proba = model.predict_proba(frame[["x", "noise"]].iloc[:5])
    assert proba.shape == (5, 2) and np.allclose(proba.sum(axis=1), 1.0)


@pytest.mark.parametrize("combiner", ["vote", "confidence", "stack"])
def test_every_combiner_learns_the_planted_feature(combiner: str) -> None:
    frame, y = planted(4000, seed=1)
    train, test = frame.iloc[:3000][["x", "noise"]], frame.iloc[3000:][["x", "noise"]]
    model = meta(agents=["logistic", "majority"], combiner=combiner).fit(train, y[:3000])
    hits = (model.predict(test) == y[3000:]).mean()
    assert hits > 0.65


def test_gate_stands_aside_where_agents_disagree() -> None:
    views = np.array([[[0.9, 0.1], [0.1, 0.9]], [[0.8, 0.2], [0.75, 0.25]]])
    weights = np.full((2, 2), 0.5)
    spread = disagreement(views, weights, "dispersion")
    assert spread[0] == pytest.approx(np.sqrt(0.32))  # each view 0.4 from the pool per class
    assert spread[1] < 0.05
    assert disagreement(views, weights, "entropy").tolist() == [1.0, 0.0]
    # rows where the pool loses (gain < 0) are the ones with a high spread: the gate drops them
    gain = np.r_[np.full(80, 0.05), np.full(20, -0.3)]
    high = np.r_[np.linspace(0.0, 0.1, 80), np.linspace(0.5, 0.6, 20)]
    threshold = tune_gate(gain, high, min_keep=0.5)
    assert 0.1 <= threshold < 0.5
    assert tune_gate(np.full(100, 0.01), high, 0.5) == np.inf  # nothing to gain: no gate


def test_gated_rows_get_the_climatology() -> None:
    frame, y = planted(3000, seed=2)
    x = frame[["x", "noise"]]
    model = meta(agents=["logistic", {"kind": "logistic", "params": {"C": 1e-4}}], gate="entropy")
    model.fit(x, y)
    model.threshold_ = 0.5  # stand aside wherever the two agents' votes split
    output = model.combine(x.iloc[:400])
    assert output.gated.any()
    gated = output.proba[output.gated]
    np.testing.assert_array_equal(gated, np.broadcast_to(model.prior_, gated.shape))
    assert model.explain(output, int(np.flatnonzero(output.gated)[0]))["gated"] is True


def test_skill_weights_per_regime() -> None:
    codes = np.array([0, 1] * 50)
    good = np.where(codes[:, None] == np.arange(2), 0.8, 0.2)
    views = np.stack([good, np.full((100, 2), 0.5)], axis=1)
    regime = np.r_[np.ones(50), np.zeros(50)]
    views[50:, 0] = 1.0 - views[50:, 0]  # agent 0 is right in regime 1 only
    first, _ = skill_weights(views, codes, np.array([0.5, 0.5]), regime)
    second, _ = skill_weights(views, codes, np.array([0.5, 0.5]), 1.0 - regime)
    assert first[0] == 1.0 and second.tolist() == [0.5, 0.5]


def test_regime_agent_mixes_weights_and_explains(spy: None) -> None:
    frame, y = planted(3000, seed=3)
    x = frame[["row", "x", "noise"]]
    model = meta(agents=["logistic", "rowspy"], regime_agent="rowspy").fit(x, y)
    assert model.weights_.shape == (2, 2)
    output = model.combine(x.iloc[-3:])
    info = model.explain(output)
    assert len(info["regimes"]) == 2 and set(info["agents"]) == {"logistic", "rowspy"}
    assert sum(a["weight"] for a in info["agents"].values()) == pytest.approx(1.0)


def _bundle(model: MetaModel, x: pd.DataFrame) -> ModelBundle:
    predictor = Predictor(tuple(x.columns), model.classes_, model, None, None)
    window = ("2021-01-01", "2021-02-01")
    classes = [float(c) for c in model.classes_]
    info = BundleInfo("h", list(x.columns), {}, "binary_h1", 1, {"kind": "meta"}, window, window,
                      "sum", classes)  # fmt: skip
    return ModelBundle(predictor, info)


def test_bundle_round_trip_is_safe_and_exact(tmp_path: Path) -> None:
    frame, y = planted(2000, seed=4)
    x = frame[["x", "noise"]]
    agents = [{"kind": "lightgbm", "params": {"n_estimators": 20}}, "logistic"]
    model = meta(agents=agents, combiner="stack").fit(x, y)
    path = save_bundle(_bundle(model, x), tmp_path / "meta")
    assert not list(path.glob("*.pkl")) and (path / "agent0-model.txt").is_file()
    loaded = load_bundle(path).predictor
    np.testing.assert_array_equal(loaded.predict_proba(x), model.predict_proba(x))
    _, info = loaded.predict_explained(x.iloc[-1:])
    assert set(info["probabilities"]) == {"down", "up"}
    assert info["combiner"] == "stack" and set(info["agents"]) == {"lightgbm", "logistic"}


def test_a_pickled_agent_needs_trust(tmp_path: Path) -> None:
    frame, y = planted(1500, seed=5)
    x = frame[["x", "noise"]]
    agents = [{"kind": "random_forest", "params": {"n_estimators": 5}}, "logistic"]
    model = meta(agents=agents).fit(x, y)
    path = save_bundle(_bundle(model, x), tmp_path / "meta")
    with pytest.raises(BundleError, match="--trust-bundle"):
        load_bundle(path)
    loaded = load_bundle(path, trust=True).predictor
    np.testing.assert_array_equal(loaded.predict_proba(x), model.predict_proba(x))


def test_too_short_a_window_is_a_clear_error() -> None:
    frame, y = planted(120)
    with pytest.raises(DataError, match="too few to fit the agents"):
        meta(agents=["logistic"], purge_rows=50).fit(frame[["x"]], y)
    frame, y = planted(400)
    with pytest.raises(ConfigError, match="no regime_proba"):
        meta(agents=["logistic", "majority"], regime_agent="majority").fit(frame[["x"]], y)


def test_an_agent_reads_only_its_columns(tmp_path: Path) -> None:
    frame, y = planted(1500, seed=6)
    x = frame[["x", "noise"]]
    model = meta(agents=[{"kind": "logistic", "name": "news", "columns": ["noi"]}, "logistic"])
    model.fit(x, y)
    assert [a.model.n_features_in_ for a in model.agents_] == [1, 2]
    assert model.skills_[0] < 0.01 < model.skills_[1]  # the noise column alone has no skill
    loaded = load_bundle(save_bundle(_bundle(model, x), tmp_path / "m")).predictor.model
    assert loaded.agents_[0].columns == ("noise",)
    with pytest.raises(DataError, match="no feature column starts with 'news_'"):
        meta(agents=[{"kind": "logistic", "columns": ["news_"]}]).fit(x, y)


def test_purge_shorter_than_the_label_horizon_is_refused() -> None:
    from factories import momentum_walk

    from aitrader.config import CostsConfig
    from aitrader.features.spec import FeatureSpec
    from aitrader.labels.config import LabelConfig
    from aitrader.validation.config import ValidationConfig
    from aitrader.validation.walkforward import final_fold, fit_chain, prepare

    candles = momentum_walk(1500, seed=0, beta=0.0)
    labels = LabelConfig(kind="binary", horizon=30)
    prepared = prepare(candles, [FeatureSpec(name="rsi")], labels, CostsConfig(), "1h")
    config = ModelConfig.model_validate({"kind": "meta", "meta": {"agents": ["logistic"]}})
    fold = final_fold(prepared, ValidationConfig())
    with pytest.raises(ConfigError, match=r"purge_rows is 24 but labels\.horizon is 30"):
        fit_chain(prepared, fold, config)


def test_meta_carries_its_agents_magnitude_interval_and_regimes(
    kit: SimpleNamespace, tmp_path: Path
) -> None:
    candles, _ = kit.regime_walk(2400, seed=7)
    X, y = kit.rows(candles)
    fast = {"n_estimators": 20}
    agents = [
        "logistic",
        {"kind": "quantile", "params": fast},
        {"kind": "quantile", "params": fast, "name": "q2"},
        {"kind": "hmm", "params": {"window": kit.LAGS, "states": 2}},
    ]
    model = meta(agents=agents, purge_rows=2).fit(X, y)
    rows = X.iloc[-40:]
    out = model.outputs(rows)
    assert [c for c in out.columns if c.endswith("ret_q50")] == ["quantile_ret_q50", "q2_ret_q50"]
    assert {"hmm_p0", "hmm_p1"} <= set(out.columns)  # a column one agent has keeps its name
    own = model.agents_[1].outputs(rows)
    assert own is not None
    np.testing.assert_array_equal(out["quantile_ret_hi80"], own["ret_hi80"])
    assert (out["quantile_ret_lo95"] <= out["quantile_ret_lo80"]).all()
    assert (out["quantile_ret_lo80"] <= out["quantile_ret_hi80"]).all()
    loaded = load_bundle(save_bundle(_bundle(model, X), tmp_path / "meta")).predictor
    _, info = loaded.predict_explained(rows)
    assert info["outputs"]["q2_ret_q50"] == pytest.approx(out["q2_ret_q50"].iloc[-1])
    assert set(info["agents"]) == {"logistic", "quantile", "q2", "hmm"}


def test_a_sequence_agent_gets_its_window_in_every_meta_prediction(
    kit: SimpleNamespace,
) -> None:
    candles, _ = kit.regime_walk(1600, seed=8)
    X, y = kit.rows(candles)
    tiny = {"window": 8, "hidden": 8, "epochs": 2, "purge": 4, "batch_size": 64, "levels": 1}
    model = meta(agents=["logistic", {"kind": "tcn", "params": tiny}], purge_rows=4).fit(X, y)
    assert model.context_rows == 7
    chain = Predictor(tuple(X.columns), model.classes_, model, None, None)
    last = np.array([len(X) - 1])
    one_bar = chain.proba_at(X.iloc[-(model.context_rows + 1) :], np.array([7]))
    np.testing.assert_allclose(one_bar, chain.proba_at(X, last), rtol=0, atol=1e-12)
    padded = model.predict_proba(X.iloc[-1:])  # no context: the tcn would see padding
    assert not np.allclose(padded, chain.proba_at(X, last), atol=1e-6)
