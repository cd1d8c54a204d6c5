"""What the sequence kinds share: parameters, causal windows, the training loop, the codec.

A sequence model reads, for the row at bar ``t``, the window of feature rows ``t - window + 1 ..
t`` of the matrix it is given (rows before the first are the first row repeated), so a
prediction never sees a later row; :attr:`SequenceModel.context_rows` tells callers how many
earlier rows to pass along (:meth:`aitrader.models.predictor.Predictor.proba_at`).

Training (``fit``) uses the most recent ``max_train_rows`` rows of the training window it is
given (the windows of the first of them still read the rows before). The last
``validation_fraction`` of them is the early-stopping slice; ``purge`` rows before it are
dropped, so no fitted label overlaps the slice. The epoch with the lowest validation loss is
kept. Training is seeded and runs with deterministic algorithms on ``n_jobs`` threads; on a GPU
when ``device`` allows one. Prediction always runs on the CPU in float64, so a fitted model
gives the same numbers before and after a bundle round trip, on any machine, for any batch.

Bundles hold the weights as numpy arrays (``model.npz``) and the class list, shapes and
training record as JSON (``model.json``): no pickle.
"""

from __future__ import annotations

import json
import os
from collections.abc import Iterator, Mapping
from contextlib import contextmanager
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any, ClassVar, Literal, Self

import numpy as np
from pydantic import Field

from aitrader.errors import DataError
from aitrader.models.base import ArrayLike, ClassifierBase, as_matrix, check_training
from aitrader.models.codecs import decode, encode, json_bytes, npz_bytes, read_npz
from aitrader.models.config import Frozen
from aitrader.models.kinds import ModelKind

if TYPE_CHECKING:
    from collections.abc import Callable

    import torch
    from optuna.trial import Trial

PREDICT_CHUNK = 64
"""Windows per forward pass when predicting; the last pass is padded to the same size, so every
pass has one shape (a matrix product picks its kernel, and so its rounding, by shape: a batch of
one would round differently from a batch of many)."""
MIN_FIT_ROWS = 20


class SequenceParams(Frozen):
    """Window, size and training budget shared by the sequence kinds (defaults sized so a
    walk-forward over the bundled BTC hourly data takes minutes on two cores)."""

    window: int = Field(16, ge=2, le=1024, description="feature rows per input window")
    hidden: int = Field(16, ge=2, le=1024, description="hidden units / channels")
    dropout: float = Field(0.1, ge=0, lt=1)
    epochs: int = Field(8, ge=1, le=10_000, description="most passes over the training rows")
    patience: int = Field(2, ge=1, le=1000, description="epochs without a better validation loss")
    batch_size: int = Field(256, ge=8, le=65_536)
    learning_rate: float = Field(1e-3, gt=0, le=1)
    weight_decay: float = Field(1e-4, ge=0, le=1)
    validation_fraction: float = Field(0.15, gt=0, lt=0.5, description="early-stopping slice")
    purge: int = Field(24, ge=0, description="rows dropped before the slice (≥ label horizon)")
    max_train_rows: int | None = Field(
        6_000, ge=100, description="most recent training rows fitted (None: all)"
    )
    device: Literal["auto", "cpu", "cuda"] = Field("auto", description="auto: CUDA if present")


def _device(choice: str) -> torch.device:
    import torch

    if choice == "cuda" and not torch.cuda.is_available():
        raise DataError("sequence model: device 'cuda' asked for but no CUDA device is present")
    use_cuda = choice == "cuda" or (choice == "auto" and torch.cuda.is_available())
    return torch.device("cuda" if use_cuda else "cpu")


@contextmanager
def torch_runtime(threads: int, seed: int | None = None, cuda: bool = False) -> Iterator[None]:
    """Deterministic algorithms, ``threads`` CPU threads and (given) a fixed seed, restored on
    exit (torch keeps them process-wide)."""
    import torch

    if cuda:  # cuBLAS is deterministic only with a fixed workspace
        os.environ.setdefault("CUBLAS_WORKSPACE_CONFIG", ":4096:8")
    threads_before = torch.get_num_threads()
    deterministic_before = torch.are_deterministic_algorithms_enabled()
    torch.set_num_threads(threads)
    torch.use_deterministic_algorithms(True, warn_only=cuda)
    if seed is not None:
        torch.manual_seed(seed)
    try:
        yield
    finally:
        torch.set_num_threads(threads_before)
        torch.use_deterministic_algorithms(deterministic_before)


def windows(padded: torch.Tensor, rows: torch.Tensor, window: int) -> torch.Tensor:
    """The windows ending at ``rows`` of a matrix padded with ``window - 1`` leading rows:
    ``(len(rows), window, features)``."""
    import torch

    offsets = torch.arange(window, device=padded.device)
    return padded[rows.unsqueeze(1) + offsets]


def pad(features: np.ndarray, window: int, dtype: Any, device: Any = "cpu") -> torch.Tensor:
    """``features`` with the first row repeated ``window - 1`` times in front, as a tensor."""
    import torch

    head = np.repeat(features[:1], window - 1, axis=0)
    return torch.as_tensor(np.concatenate([head, features]), dtype=dtype, device=device)


def _finite(features: np.ndarray, what: str) -> np.ndarray:
    bad = ~np.isfinite(features)
    if bad.any():
        row, column = (int(v[0]) for v in np.nonzero(bad))
        raise DataError(
            f"sequence model {what}: {int(bad.any(axis=1).sum())} feature row(s) hold NaN/inf "
            f"(first at row {row}, column {column}); drop or fill them first"
        )
    return features


@dataclass(frozen=True)
class _Split:
    """Row positions fitted and used for early stopping."""

    fit: np.ndarray
    validate: np.ndarray


def split_rows(n: int, p: SequenceParams) -> _Split:
    """The most recent ``max_train_rows`` rows: fitted rows, purge gap, validation slice."""
    start = 0 if p.max_train_rows is None else max(0, n - p.max_train_rows)
    used = n - start
    size = max(1, round(p.validation_fraction * used))
    stop = n - size - p.purge
    if stop - start < MIN_FIT_ROWS:
        raise DataError(
            f"sequence model: {n} training rows are too few for a validation slice of {size} "
            f"rows after a purge of {p.purge} (need {MIN_FIT_ROWS} fitted rows)"
        )
    return _Split(np.arange(start, stop), np.arange(n - size, n))


class SequenceModel(ClassifierBase):
    """A torch sequence classifier over causal windows of feature rows; each kind sets
    ``net`` (a key of :data:`aitrader.models.deep.nets.NETS`) and its parameter model."""

    net: ClassVar[str]
    params_type: ClassVar[type[SequenceParams]]
    _net_cache: torch.nn.Module | None = None

    @property
    def p(self) -> Any:
        """The parameters (the kind's defaults when None was given)."""
        return self.params or self.params_type()

    @property
    def context_rows(self) -> int:
        """Earlier rows each prediction reads: the window minus the row itself."""
        return int(self.p.window) - 1

    def build_net(self, features: int, classes: int) -> torch.nn.Module:
        """The kind's network, freshly initialised (from the current torch seed)."""
        from aitrader.models.deep.nets import NETS

        return NETS[self.net](features, classes, self.p)

    def fit(self, X: ArrayLike, y: ArrayLike) -> Self:
        """Train on the windows of the training rows; keep the best epoch's weights."""
        from aitrader.models.deep.train import train

        features, labels = check_training(X, y)
        _finite(features, "training")
        self.classes_, codes = np.unique(labels, return_inverse=True)
        split = split_rows(len(codes), self.p)
        if np.unique(codes[split.fit]).size < 2:
            raise DataError("sequence model: the fitted rows hold a single class")
        device = _device(self.p.device)
        with torch_runtime(self.n_jobs, self.seed, device.type == "cuda"):
            net = self.build_net(features.shape[1], len(self.classes_))
            record = train(net, features, codes, split, self.p, device)
        self.weights_ = record.weights
        self.history_ = record.history
        self.best_epoch_ = record.best_epoch
        self.device_ = device.type
        self.n_features_in_ = features.shape[1]
        self._net_cache = None
        return self

    def _net(self) -> torch.nn.Module:
        """The fitted network in float64 on the CPU, in evaluation mode (built once)."""
        import torch

        net = self._net_cache
        if net is None:
            net = self.build_net(self.n_features_in_, len(self.classes_)).double().eval()
            state = {k: torch.from_numpy(v.astype(np.float64)) for k, v in self.weights_.items()}
            net.load_state_dict(state, strict=True)
            self._net_cache = net
        return net

    def predict_proba(self, X: ArrayLike) -> np.ndarray:
        """Class probabilities of every row from the window ending at it."""
        import torch

        self._check_fitted()
        features = _finite(as_matrix(X), "prediction")
        if features.shape[1] != self.n_features_in_:
            raise DataError(
                f"expected {self.n_features_in_} feature columns, got {features.shape[1]}"
            )
        if features.shape[0] == 0:
            return np.empty((0, len(self.classes_)))
        window = int(self.p.window)
        n = features.shape[0]
        rows = np.minimum(np.arange(-(-n // PREDICT_CHUNK) * PREDICT_CHUNK), n - 1)
        with torch.no_grad(), torch_runtime(self.n_jobs):
            net, padded = self._net(), pad(features, window, torch.float64)
            parts = [
                torch.softmax(net(windows(padded, torch.from_numpy(chunk), window)), dim=1)
                for chunk in rows.reshape(-1, PREDICT_CHUNK)
            ]
        return torch.cat(parts).numpy().astype(np.float64)[:n]


_STATE = ("classes_", "n_features_in_", "best_epoch_", "history_", "device_")


@dataclass(frozen=True)
class SequenceCodec:
    """The weights as ``model.npz`` (one array per tensor, float32) and the class list, shapes
    and training record as ``model.json``; loading checks the weights fit the kind's network."""

    executable: bool = False

    def dump(self, model: Any) -> dict[str, bytes]:
        arrays: dict[str, np.ndarray] = {}
        meta: dict[str, Any] = {name: encode(getattr(model, name), name, arrays) for name in _STATE}
        meta["weights"] = sorted(model.weights_)
        arrays |= {f"weight:{k}": v for k, v in model.weights_.items()}
        return {"model.json": json_bytes(meta), "model.npz": npz_bytes(arrays)}

    def load(self, model: Any, files: Mapping[str, bytes]) -> Any:
        meta = json.loads(files["model.json"])
        arrays = read_npz(files["model.npz"])
        for name in _STATE:
            setattr(model, name, decode(meta[name], arrays))
        model.weights_ = {k: arrays[f"weight:{k}"] for k in meta["weights"]}
        model._net_cache = None
        model._net()  # a weight missing, extra or misshapen fails here, at load
        return model


def sequence_kind(
    name: str,
    summary: str,
    estimator: type[SequenceModel],
    space: Callable[[Trial], dict[str, Any]],
) -> ModelKind[Any]:
    """The registry entry of a sequence kind: its estimator's parameters, the array codec, the
    ``deep`` extra that provides torch."""
    return ModelKind(
        name=name,
        summary=summary,
        estimator=estimator,
        params=estimator.params_type,
        codec=SequenceCodec(),
        space=space,
        extra="deep",
        requires=("torch",),
    )
