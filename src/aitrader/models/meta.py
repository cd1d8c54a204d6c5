"""The meta-agent (model kind ``meta``): several registered kinds vote, and it stands aside when
they disagree.

``models: {kind: meta, meta: {agents: [lightgbm, logistic], combiner: vote}}``. Any registered
kind can be an agent (``{kind: lightgbm, params: {n_estimators: 100}, name: fast}`` sets its
parameters; ``columns: [news_]`` makes it read only the columns with those prefixes, e.g. a
sentiment agent on the ``news_sentiment`` feature). Inside :meth:`MetaModel.fit`, on the
training window only:

1. **Out-of-fold views.** The last ``1 − first_fraction`` of the window is cut into
   ``inner_folds`` blocks; for each block every agent is fitted on the rows before it (less
   ``purge_rows``, keep it ≥ the label horizon) and predicts the block.
2. **Calibration.** Each agent gets a calibrator fitted on its out-of-fold predictions.
3. **Weights.** Each agent's log-loss skill over the climatology on the most recent
   ``recent_fraction`` of the out-of-fold rows (per regime when a regime agent is named).
4. **Combiner.** ``vote``: the skill-weighted opinion pool; ``confidence``: skill weight ×
   the view's confidence (1 − normalised entropy) per bar; ``stack``: a logistic regression on
   the agents' log views, fitted on the out-of-fold rows only.
5. **Disagreement gate.** The threshold on the views' weighted dispersion (or the entropy of
   their weighted votes) that maximises the log-loss gain on the out-of-fold rows; above it the
   meta-agent outputs the climatology (no view, so the decision layer does not trade).
6. Every agent is refitted on the whole window.

**Per-regime weights:** name an agent in ``regime_agent`` whose estimator has
``regime_proba(X) -> (rows, regimes)`` (the HMM regime agent); skill weights are then learned
per regime (rows weighted by the regime's probability) and mixed per bar by the agent's regime
probabilities. :meth:`MetaModel.combine` returns the views, weights, disagreement and gate of
each row; :meth:`MetaModel.explain` turns one row into JSON for ``Target.info``.
"""

from __future__ import annotations

from collections import Counter
from dataclasses import dataclass
from itertools import pairwise
from typing import TYPE_CHECKING, Any, Literal, Self

import numpy as np
from pydantic import Field, model_validator

from aitrader.errors import ConfigError, DataError
from aitrader.frozen import Frozen
from aitrader.models.base import ArrayLike, ClassifierBase, check_training
from aitrader.models.calibration import ProbabilityCalibrator
from aitrader.models.kinds import ModelKind, register
from aitrader.models.meta_combine import (
    GateMeasure,
    Stacker,
    confidence,
    disagreement,
    normalise,
    pool,
    row_log_loss,
    skill_weights,
    tune_gate,
)

if TYPE_CHECKING:
    import pandas as pd

    from aitrader.features.scaling import FeatureScaler

MIN_ROWS = 50


class AgentSpec(Frozen):
    """One agent: a registered kind, its parameters and an optional display name."""

    kind: str
    params: dict[str, Any] = Field(default_factory=dict)
    name: str | None = Field(None, pattern=r"^[a-z][a-z0-9_]{0,39}$")
    columns: tuple[str, ...] = Field(
        (), description="prefixes of the feature columns it reads (e.g. news_); empty: all"
    )

    @model_validator(mode="before")
    @classmethod
    def _from_name(cls, data: Any) -> Any:
        return {"kind": data} if isinstance(data, str) else data

    @model_validator(mode="after")
    def _known(self) -> Self:
        from aitrader.models import kinds

        if self.kind == "meta":
            raise ValueError("a meta-agent cannot be an agent of another meta-agent")
        kind = kinds.find(self.kind)
        if kind is None:
            raise ValueError(kinds.unknown(self.kind))
        kind.validate_params(self.params)
        return self

    def build(self, seed: int, n_jobs: int) -> Any:
        """An unfitted estimator of this agent's kind."""
        from aitrader.models import kinds

        kind = kinds.get(self.kind)
        return kind.build(kind.validate_params(self.params), seed, n_jobs)

    def select(self, names: tuple[str, ...]) -> tuple[str, ...] | None:
        """The feature columns this agent reads (None: all); DataError for a prefix that
        matches none."""
        if not self.columns:
            return None
        for prefix in self.columns:
            if not any(n.startswith(prefix) for n in names):
                raise DataError(
                    f"meta agent {self.name or self.kind!r}: no feature column starts with "
                    f"{prefix!r}; add the feature (e.g. news_sentiment) or fix its columns"
                )
        return tuple(n for n in names if n.startswith(self.columns))

    def scaled(self, method: str) -> bool:
        """Whether this agent reads scaled features."""
        from aitrader.models import kinds

        return method != "none" and not kinds.get(self.kind).raw_features


def _default_agents() -> tuple[AgentSpec, ...]:
    return (AgentSpec(kind="lightgbm"), AgentSpec(kind="logistic"))


class MetaParams(Frozen):
    """The agents, the combiner and the disagreement gate of the meta-agent."""

    agents: tuple[AgentSpec, ...] = Field(default_factory=_default_agents, min_length=1)
    combiner: Literal["vote", "confidence", "stack"] = "vote"
    gate: GateMeasure = Field("dispersion", description="disagreement measure; off: no gate")
    gate_min_keep: float = Field(0.5, gt=0, le=1, description="the gate keeps ≥ this share")
    inner_folds: int = Field(3, ge=1, le=20, description="out-of-fold blocks per fit")
    first_fraction: float = Field(0.5, ge=0.1, le=0.9, description="rows before the first block")
    purge_rows: int = Field(24, ge=0, description="rows dropped before each block (≥ horizon)")
    recent_fraction: float = Field(0.5, gt=0, le=1, description="out-of-fold rows for skill")
    calibration: Literal["sigmoid", "isotonic", "none"] = "sigmoid"
    scaler: Literal["robust", "standard", "none"] = "robust"
    scaler_clip: float | None = Field(10.0, gt=0)
    stack_c: float = Field(1.0, gt=0, description="stacking: inverse L2 strength")
    regime_agent: str | None = Field(None, description="agent with regime_proba (per-regime)")

    @model_validator(mode="after")
    def _names(self) -> Self:
        if self.regime_agent is not None and self.regime_agent not in self.names():
            raise ValueError(
                f"regime_agent {self.regime_agent!r} is not one of the agents "
                f"({', '.join(self.names())})"
            )
        return self

    def names(self) -> list[str]:
        """Each agent's name (its kind unless named; repeats get _2, _3, …)."""
        out: list[str] = []
        for spec in self.agents:
            base = spec.name or spec.kind
            name, n = base, 1
            while name in out:
                n += 1
                name = f"{base}_{n}"
            out.append(name)
        return out


@dataclass
class FittedAgent:
    """An agent fitted on a window: its scaler, model and (after fitting) calibrator."""

    name: str
    model: Any
    scaler: FeatureScaler | None
    calibrator: ProbabilityCalibrator | None = None
    columns: tuple[str, ...] | None = None

    def _inputs(self, frame: pd.DataFrame) -> Any:
        if self.columns is not None:
            frame = frame[list(self.columns)]
        return frame if self.scaler is None else self.scaler.transform(frame)

    def raw(self, frame: pd.DataFrame, classes: np.ndarray) -> np.ndarray:
        """Uncalibrated probabilities over ``classes``."""
        from aitrader.models.predictor import align_proba  # pandas: not at the kind's import

        proba = self.model.predict_proba(self._inputs(frame))
        return align_proba(np.asarray(proba), np.asarray(self.model.classes_), classes)

    def view(self, frame: pd.DataFrame, classes: np.ndarray) -> np.ndarray:
        """Calibrated probabilities over ``classes``."""
        raw = self.raw(frame, classes)
        return raw if self.calibrator is None else self.calibrator.transform(raw)

    def outputs(self, frame: pd.DataFrame) -> pd.DataFrame | None:
        """The agent's named outputs (``aitrader.models.agents``); None for a kind without."""
        method = getattr(self.model, "outputs", None)
        return None if method is None else method(self._inputs(frame))

    def regimes(self, frame: pd.DataFrame) -> np.ndarray:
        """The regime agent's regime probabilities (ConfigError for another agent)."""
        method = getattr(self.model, "regime_proba", None)
        if method is None:
            raise ConfigError(
                f"meta regime_agent {self.name!r}: its kind has no regime_proba(X); name a "
                "regime agent (e.g. the HMM kind) or drop regime_agent"
            )
        return np.asarray(method(self._inputs(frame)), dtype=np.float64)


@dataclass(frozen=True)
class MetaOutput:
    """Per row: the combined probabilities (the climatology where gated), each agent's
    calibrated view ``(rows, agents, classes)``, its weight, the disagreement, the gate and the
    regime probabilities (None without a regime agent)."""

    proba: np.ndarray
    views: np.ndarray
    weights: np.ndarray
    spread: np.ndarray
    gated: np.ndarray
    regimes: np.ndarray | None


class MetaModel(ClassifierBase):
    """The meta-agent: agents' calibrated views → combiner → disagreement gate."""

    def _p(self) -> MetaParams:
        return self.params if isinstance(self.params, MetaParams) else MetaParams()

    @property
    def context_rows(self) -> int:
        """The most earlier rows any fitted agent reads (a sequence agent's window); callers
        pass them before the rows to predict (``Predictor.proba_at``, the model strategy)."""
        agents: list[FittedAgent] = getattr(self, "agents_", [])
        return max((a.model.context_rows for a in agents), default=0)

    def check_horizon(self, horizon: int) -> None:
        """ConfigError when ``purge_rows`` is shorter than the label horizon (the inner
        out-of-fold blocks would then see training labels that overlap them)."""
        purge = self._p().purge_rows
        if purge < horizon:
            raise ConfigError(
                f"models.meta.purge_rows is {purge} but labels.horizon is {horizon}: set "
                f"models.meta.purge_rows to at least {horizon}"
            )

    def _frame(self, X: ArrayLike) -> pd.DataFrame:
        import pandas as pd  # not at the kind's import (listing kinds stays light)

        if isinstance(X, pd.DataFrame):
            return X
        names = getattr(self, "feature_names_", None)
        values = np.asarray(X, dtype=np.float64)
        columns = list(names) if names else [f"x{i}" for i in range(values.shape[1])]
        return pd.DataFrame(values, columns=columns)

    def _fit_agent(self, index: int, frame: pd.DataFrame, labels: np.ndarray) -> FittedAgent:
        p = self._p()
        spec, name = p.agents[index], p.names()[index]
        if len(frame) < MIN_ROWS or np.unique(labels).size < 2:
            raise DataError(
                f"meta-agent: {len(frame)} rows with {np.unique(labels).size} class(es) before an "
                "out-of-fold block are too few to fit the agents; lengthen the training window "
                "or lower meta.inner_folds / raise meta.first_fraction"
            )
        columns = spec.select(tuple(str(c) for c in frame.columns))
        if columns is not None:
            frame = frame[list(columns)]
        scaler = None
        if spec.scaled(p.scaler):
            from aitrader.features.scaling import FeatureScaler  # pandas: only when fitting

            scaler = FeatureScaler(p.scaler, p.scaler_clip).fit(frame)  # type: ignore[arg-type]
        model = spec.build(self.seed, self.n_jobs)
        model.fit(frame if scaler is None else scaler.transform(frame), labels)
        return FittedAgent(name, model, scaler, columns=columns)

    def _out_of_fold(
        self, frame: pd.DataFrame, labels: np.ndarray
    ) -> tuple[np.ndarray, np.ndarray, np.ndarray | None]:
        """``(rows, raw views, regime probabilities)`` of the inner out-of-fold blocks."""
        p, n = self._p(), len(frame)
        edges = np.linspace(int(p.first_fraction * n), n, p.inner_folds + 1).astype(int)
        rows, views, regimes = [], [], []
        regime = None if p.regime_agent is None else p.names().index(p.regime_agent)
        for lo, hi in pairwise(edges):
            if hi <= lo:
                continue
            end = max(0, lo - p.purge_rows)
            train = frame.iloc[:end]
            agents = [self._fit_agent(i, train, labels[:end]) for i in range(len(p.agents))]
            # a sequence agent reads the rows before the block too (features, no labels)
            start = max(0, lo - max(a.model.context_rows for a in agents))
            block, keep = frame.iloc[start:hi], lo - start
            views.append(np.stack([a.raw(block, self.classes_)[keep:] for a in agents], axis=1))
            if regime is not None:
                regimes.append(agents[regime].regimes(block)[keep:])
            rows.append(np.arange(lo, hi))
        if not rows:
            raise DataError("meta-agent: the training window has no out-of-fold rows")
        found = np.concatenate(regimes) if regimes else None
        return np.concatenate(rows), np.concatenate(views), found

    def fit(self, X: ArrayLike, y: ArrayLike) -> Self:
        """Out-of-fold views → calibrators → weights, combiner and gate → agents refitted."""
        frame = self._frame(X)
        _, labels = check_training(frame, y)
        p = self._p()
        self.feature_names_ = tuple(str(c) for c in frame.columns)
        self.classes_ = np.unique(labels)
        codes = np.searchsorted(self.classes_, labels)
        self.prior_ = np.bincount(codes, minlength=len(self.classes_)) / len(codes)
        rows, raw, regimes = self._out_of_fold(frame, labels)
        calibrators = [self._calibrator(raw[:, i], codes[rows]) for i in range(raw.shape[1])]
        views = np.stack(
            [raw[:, i] if c is None else c.transform(raw[:, i]) for i, c in enumerate(calibrators)],
            axis=1,
        )
        self._learn(views, codes[rows], regimes)
        self.agents_ = [self._fit_agent(i, frame, labels) for i in range(len(p.agents))]
        for agent, calibrator in zip(self.agents_, calibrators, strict=True):
            agent.calibrator = calibrator
        self.n_features_in_ = frame.shape[1]
        return self

    def _calibrator(self, raw: np.ndarray, codes: np.ndarray) -> ProbabilityCalibrator | None:
        method = self._p().calibration
        return None if method == "none" else ProbabilityCalibrator(method).fit(raw, codes)

    def _learn(self, views: np.ndarray, codes: np.ndarray, regimes: np.ndarray | None) -> None:
        """Skill weights (per regime), the stacker and the gate threshold, out-of-fold only."""
        p = self._p()
        recent = slice(int(len(codes) * (1.0 - p.recent_fraction)), None)
        weights, self.skills_ = skill_weights(views[recent], codes[recent], self.prior_)
        if regimes is None:
            self.weights_ = weights[None, :]
        else:
            self.weights_ = np.stack(
                [
                    skill_weights(views[recent], codes[recent], self.prior_, r[recent])[0]
                    for r in regimes.T
                ]
            )
        self.stacker_ = None
        if p.combiner == "stack":
            self.stacker_ = Stacker(p.stack_c).fit(views, codes)
        combined, row_weights = self._combine(views, regimes)
        spread = disagreement(views, row_weights, p.gate)
        gain = row_log_loss(np.tile(self.prior_, (len(codes), 1)), codes)
        gain = gain - row_log_loss(combined, codes)
        self.threshold_ = np.inf if p.gate == "off" else tune_gate(gain, spread, p.gate_min_keep)

    def _combine(
        self, views: np.ndarray, regimes: np.ndarray | None
    ) -> tuple[np.ndarray, np.ndarray]:
        """``(combined probabilities, row weights)`` before the gate."""
        n = views.shape[0]
        if regimes is None:
            base = np.tile(self.weights_[0], (n, 1))
        else:
            base = normalise(regimes @ self.weights_)
        if self.stacker_ is not None:
            shares = np.tile(self.stacker_.agent_shares(views.shape[1]), (n, 1))
            return self.stacker_.predict(views), shares
        if self._p().combiner == "confidence":
            base = normalise(base * confidence(views))
        return pool(views, base), base

    def combine(self, X: ArrayLike) -> MetaOutput:
        """Every agent's view, the weights, the disagreement, the gate and the result."""
        self._check_fitted()
        frame = self._frame(X)
        views = np.stack([a.view(frame, self.classes_) for a in self.agents_], axis=1)
        regimes = None
        p = self._p()
        if p.regime_agent is not None:
            regimes = self.agents_[p.names().index(p.regime_agent)].regimes(frame)
        proba, weights = self._combine(views, regimes)
        spread = disagreement(views, weights, p.gate)
        gated = spread > self.threshold_
        proba = np.where(gated[:, None], self.prior_[None, :], proba)
        return MetaOutput(proba, views, weights, spread, gated, regimes)

    def outputs(self, X: ArrayLike) -> pd.DataFrame:
        """The agents' named outputs side by side: magnitude and intervals from a quantile
        agent, regime probabilities from an HMM agent, σ and range from a GARCH agent (a column
        two agents share is prefixed with the agent's name); no columns when no agent has any."""
        import pandas as pd

        self._check_fitted()
        frame = self._frame(X)
        tables = [(a.name, a.outputs(frame)) for a in self.agents_]
        present = [(name, t.reset_index(drop=True)) for name, t in tables if t is not None]
        seen = Counter(c for _, t in present for c in t.columns)
        renamed = [
            t.rename(columns={c: f"{name}_{c}" for c in t.columns if seen[c] > 1})
            for name, t in present
        ]
        if not renamed:
            return pd.DataFrame(index=range(len(frame)))
        return pd.concat(renamed, axis=1)

    def predict_proba(self, X: ArrayLike) -> np.ndarray:
        """The combined probabilities (the training climatology where the gate stands aside)."""
        return self.combine(X).proba

    def explain(self, output: MetaOutput, row: int = -1) -> dict[str, Any]:
        """One row of :meth:`combine` as JSON: combiner, disagreement, gate and each agent's
        view and weight (what ``Target.info`` carries)."""
        from aitrader.models.predictor import class_names

        labels = class_names(self.classes_)
        agents = {
            agent.name: {
                "view": dict(zip(labels, map(float, output.views[row, i]), strict=True)),
                "weight": float(output.weights[row, i]),
            }
            for i, agent in enumerate(self.agents_)
        }
        info: dict[str, Any] = {
            "combiner": self._p().combiner,
            "disagreement": float(output.spread[row]),
            "threshold": None if np.isinf(self.threshold_) else float(self.threshold_),
            "gated": bool(output.gated[row]),
            "agents": agents,
        }
        if output.regimes is not None:
            info["regimes"] = [float(v) for v in output.regimes[row]]
        return info


def _codec() -> Any:
    from aitrader.models.meta_codec import MetaCodec

    return MetaCodec()


register(
    ModelKind(
        name="meta",
        summary="meta-agent: agents' calibrated views combined (vote/confidence/stack), "
        "stands aside when they disagree",
        estimator=MetaModel,
        params=MetaParams,
        codec=_codec(),
        raw_features=True,
    )
)
