"""How a fitted meta-agent is saved in a bundle: its own state as ``meta.json`` + ``meta.npz``
and every agent's files, written by that agent's own codec under ``agent<i>-``.

Nothing is pickled unless an agent's kind pickles (its ``.pkl`` file then makes the whole bundle
need ``--trust-bundle``); loading rebuilds each agent through the registry.
"""

from __future__ import annotations

import json
from collections.abc import Mapping
from pathlib import Path
from typing import Any

import numpy as np

from aitrader.models.calibration import ProbabilityCalibrator
from aitrader.models.codecs import decode, encode, is_trusted, json_bytes, npz_bytes, read_npz
from aitrader.models.meta_combine import Stacker

_ARRAYS = ("classes_", "prior_", "weights_", "skills_")


class MetaCodec:
    """Nested agents, their scalers and calibrators, weights, stacker and gate threshold."""

    executable = False

    def dump(self, model: Any) -> dict[str, bytes]:
        from aitrader.models.bundle_files import model_spec, scaler_state

        arrays: dict[str, np.ndarray] = {}
        files: dict[str, bytes] = {}
        agents = []
        for i, agent in enumerate(model.agents_):
            key = f"agent{i}"
            scaler = agent.scaler and scaler_state(agent.scaler, arrays, f"{key}.scaler")
            calibrator = agent.calibrator and agent.calibrator.state(arrays, f"{key}.calibrator")
            spec = model_spec(agent.model, files, f"{key}-")
            columns = None if agent.columns is None else list(agent.columns)
            agents.append(
                {"name": agent.name, "model": spec, "scaler": scaler, "cal": calibrator}
                | {"columns": columns}
            )
        state: dict[str, Any] = {a: encode(getattr(model, a), a, arrays) for a in _ARRAYS}
        state |= {
            "agents": agents,
            "feature_names": list(model.feature_names_),
            "n_features_in": int(model.n_features_in_),
            "threshold": None if np.isinf(model.threshold_) else float(model.threshold_),
            "stacker": model.stacker_ and model.stacker_.state(arrays, "stacker"),
        }
        return files | {"meta.json": json_bytes(state), "meta.npz": npz_bytes(arrays)}

    def load(self, model: Any, files: Mapping[str, bytes]) -> Any:
        from aitrader.models.bundle_files import load_model, scaler_from_state
        from aitrader.models.meta import FittedAgent

        state = json.loads(files["meta.json"])
        arrays = read_npz(files["meta.npz"])
        for a in _ARRAYS:
            setattr(model, a, decode(state[a], arrays))
        model.feature_names_ = tuple(state["feature_names"])
        model.n_features_in_ = int(state["n_features_in"])
        threshold = state["threshold"]
        model.threshold_ = np.inf if threshold is None else float(threshold)
        stacker = state["stacker"]
        model.stacker_ = None if stacker is None else Stacker.from_state(stacker, arrays)
        model.agents_ = []
        for i, spec in enumerate(state["agents"]):
            where = Path(f"meta agent {spec['name']}")
            fitted = load_model(spec["model"], dict(files), where, is_trusted(), f"agent{i}-")
            scaler = spec["scaler"] and scaler_from_state(spec["scaler"], arrays)
            calibrator = spec["cal"] and ProbabilityCalibrator.from_state(spec["cal"], arrays)
            columns = None if spec["columns"] is None else tuple(spec["columns"])
            model.agents_.append(FittedAgent(spec["name"], fitted, scaler, calibrator, columns))
        return model
