"""The agents' named outputs, read through a fitted prediction chain.

Agent kinds (``hmm``, ``garch``, ``quantile``) have, besides ``predict_proba``, an
``outputs(X)`` table of named per-bar values, each known at the close of bar ``t``:

======================  ======  =================================================================
column                  kind    meaning
======================  ======  =================================================================
``hmm_p0`` ..           hmm     P(regime k | bars ≤ t), forward-filtered; regime 0 the calmest,
``hmm_p{K-1}``                  the last the most volatile (stable across refits)
``garch_sigma``         garch   σ of the next bar's log return (per-bar fraction: vol targeting)
``garch_range``         garch   expected next high-low range ln(H/L) (stops)
``vol_high_p``          garch   P(next range above the training window's high quantile)
``ret_q50``             quantile  median of the next bar's log return
``ret_lo80/ret_hi80``   quantile  split-conformal 80 % interval of the next log return
``ret_lo95/ret_hi95``   quantile  split-conformal 95 % interval of the next log return
======================  ======  =================================================================
"""

from __future__ import annotations

import pandas as pd

from aitrader.models.predictor import Predictor


def agent_outputs(predictor: Predictor, X: pd.DataFrame) -> pd.DataFrame:
    """The named outputs of ``predictor``'s model on feature rows ``X`` (index kept); an empty
    table (no columns) for models without outputs."""
    outputs = getattr(predictor.model, "outputs", None)
    if outputs is None:
        return pd.DataFrame(index=X.index)
    table: pd.DataFrame = outputs(predictor.transform(X))
    table.index = X.index
    return table
