"""The meta-agent's arithmetic: agents' skill, combiners, disagreement and the gate.

Everything works on *views*: an ``(rows, agents, classes)`` array of each agent's calibrated
class probabilities. Weights are ``(rows, agents)`` and sum to 1 per row. Pure numpy, so one
decision costs microseconds once the agents have spoken.

* :func:`skill_weights` — each agent's log-loss skill against the climatology on out-of-fold
  rows (optionally weighted per row, e.g. by a regime's probability); weights are the positive
  skills normalised (all equal when no agent has skill).
* :func:`pool` — the weighted linear opinion pool (weighted voting on probabilities).
* :func:`confidence` — 1 − normalised entropy of each view (the confidence-weighting combiner
  multiplies the skill weights by it).
* :class:`Stacker` — multinomial logistic regression on the log views, fitted on out-of-fold
  rows only; predicted with numpy.
* :func:`disagreement` and :func:`tune_gate` — the spread of the views (weighted dispersion or
  the entropy of the weighted direction votes) and the threshold above which the meta-agent
  stands aside, chosen on out-of-fold rows.
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any, Literal

import numpy as np

from aitrader.models.codecs import decode, encode

GateMeasure = Literal["dispersion", "entropy", "off"]
_EPS = 1e-12


def row_log_loss(proba: np.ndarray, codes: np.ndarray) -> np.ndarray:
    """``-log p(true class)`` per row (probabilities clipped away from 0)."""
    picked = proba[np.arange(codes.shape[0]), codes]
    return np.asarray(-np.log(np.clip(picked, 1e-15, 1.0)))


def skill_weights(
    views: np.ndarray, codes: np.ndarray, prior: np.ndarray, rows: np.ndarray | None = None
) -> tuple[np.ndarray, np.ndarray]:
    """``(weights, skills)`` per agent: skill = 1 − log loss / climatology log loss on the
    (optionally ``rows``-weighted) out-of-fold rows; weights = positive skills normalised, or
    equal weights when no agent beats the climatology."""
    n, agents, _ = views.shape
    w = np.ones(n) if rows is None else np.asarray(rows, dtype=np.float64)
    total = max(float(w.sum()), _EPS)
    climate = float(w @ row_log_loss(np.tile(prior, (n, 1)), codes)) / total
    losses = np.array([float(w @ row_log_loss(views[:, i], codes)) / total for i in range(agents)])
    skills = 1.0 - losses / max(climate, _EPS)
    positive = np.clip(skills, 0.0, None)
    if positive.sum() <= 0:
        return np.full(agents, 1.0 / agents), skills
    return positive / positive.sum(), skills


def normalise(weights: np.ndarray) -> np.ndarray:
    """Rows scaled to sum to 1 (an all-zero row becomes equal weights)."""
    sums = weights.sum(axis=1, keepdims=True)
    equal = np.full_like(weights, 1.0 / weights.shape[1])
    return np.where(sums > 0, weights / np.where(sums > 0, sums, 1.0), equal)


def pool(views: np.ndarray, weights: np.ndarray) -> np.ndarray:
    """The weighted linear opinion pool: ``Σ_i w_i p_i`` per row."""
    return np.asarray(np.einsum("na,nak->nk", weights, views))


def confidence(views: np.ndarray) -> np.ndarray:
    """1 − normalised Shannon entropy of each view, ``(rows, agents)`` in [0, 1]."""
    k = views.shape[2]
    entropy = -(views * np.log(np.clip(views, _EPS, 1.0))).sum(axis=2)
    return np.asarray(np.clip(1.0 - entropy / np.log(k), 0.0, 1.0))


def disagreement(views: np.ndarray, weights: np.ndarray, measure: GateMeasure) -> np.ndarray:
    """How much the agents disagree per row.

    ``dispersion``: ``sqrt(Σ_i w_i ‖p_i − p̄‖²)`` with ``p̄`` the weighted pool;
    ``entropy``: normalised entropy of the weighted votes for each agent's most probable class
    (0 when all agree, 1 when the votes are spread evenly). ``off``: zeros.
    """
    n, _, k = views.shape
    if measure == "off":
        return np.zeros(n)
    if measure == "dispersion":
        centre = pool(views, weights)
        squared = ((views - centre[:, None, :]) ** 2).sum(axis=2)
        return np.asarray(np.sqrt((weights * squared).sum(axis=1)))
    votes = np.zeros((n, k))
    chosen = views.argmax(axis=2)
    for i in range(views.shape[1]):
        votes[np.arange(n), chosen[:, i]] += weights[:, i]
    entropy = -(votes * np.log(np.clip(votes, _EPS, 1.0))).sum(axis=1)
    return np.asarray(entropy / np.log(k))


def tune_gate(improvement: np.ndarray, spread: np.ndarray, min_keep: float) -> float:
    """The disagreement threshold (inclusive) that maximises the summed per-row log-loss
    improvement over the climatology on the rows kept; a gated row gets the climatology, i.e. an
    improvement of 0. Candidates are the spread's quantiles from ``min_keep`` to 1; ties keep
    more rows; ``inf`` (no gate) when keeping everything is best."""
    best, best_value = float("inf"), float(improvement.sum())
    for q in np.linspace(min_keep, 1.0, 11)[:-1][::-1]:
        threshold = float(np.quantile(spread, q))
        value = float(improvement[spread <= threshold].sum())
        if value > best_value + 1e-12:
            best, best_value = threshold, value
    return best


def _softmax(z: np.ndarray) -> np.ndarray:
    z = z - z.max(axis=1, keepdims=True)
    e = np.exp(z)
    return np.asarray(e / e.sum(axis=1, keepdims=True))


class Stacker:
    """Learned stacking: multinomial logistic regression on the agents' log views.

    Fitted only on out-of-fold views (the meta-agent never shows it an in-sample prediction);
    predicts with numpy from its coefficients. Classes never seen get probability 0 before the
    rows are renormalised with a floor.
    """

    def __init__(self, C: float = 1.0) -> None:
        self.C = C

    @staticmethod
    def design(views: np.ndarray) -> np.ndarray:
        """The stacker's inputs: every agent's log probabilities side by side."""
        n = views.shape[0]
        return np.log(np.clip(views, 1e-6, 1.0)).reshape(n, -1)

    def fit(self, views: np.ndarray, codes: np.ndarray) -> Stacker:
        from sklearn.linear_model import LogisticRegression

        self.n_classes_ = views.shape[2]
        fitted = LogisticRegression(C=self.C, max_iter=1000).fit(self.design(views), codes)
        self.seen_ = np.asarray(fitted.classes_, dtype=np.int64)
        self.coef_ = np.asarray(fitted.coef_, dtype=np.float64)
        self.intercept_ = np.asarray(fitted.intercept_, dtype=np.float64)
        return self

    def predict(self, views: np.ndarray) -> np.ndarray:
        """Stacked class probabilities, ``(rows, classes)``."""
        z = self.design(views) @ self.coef_.T + self.intercept_
        if self.seen_.size == 2:
            p1 = 0.5 * (1.0 + np.tanh(0.5 * z[:, 0]))
            seen = np.column_stack([1.0 - p1, p1])
        else:
            seen = _softmax(z)
        out = np.full((views.shape[0], self.n_classes_), 1e-6)
        out[:, self.seen_] = seen
        return np.asarray(out / out.sum(axis=1, keepdims=True))

    def agent_shares(self, agents: int) -> np.ndarray:
        """Each agent's share of the absolute coefficients (its weight in the stack)."""
        size = self.coef_.reshape(self.coef_.shape[0], agents, -1)
        total = np.abs(size).sum(axis=(0, 2))
        return np.asarray(total / max(float(total.sum()), _EPS))

    def state(self, arrays: dict[str, np.ndarray], prefix: str) -> dict[str, Any]:
        return {
            "C": self.C,
            "n_classes": self.n_classes_,
            **{a: encode(getattr(self, f"{a}_"), f"{prefix}.{a}", arrays) for a in _STACK},
        }

    @classmethod
    def from_state(cls, state: Mapping[str, Any], arrays: Mapping[str, np.ndarray]) -> Stacker:
        stacker = cls(float(state["C"]))
        stacker.n_classes_ = int(state["n_classes"])
        for a in _STACK:
            setattr(stacker, f"{a}_", decode(state[a], arrays))
        return stacker


_STACK = ("seen", "coef", "intercept")
