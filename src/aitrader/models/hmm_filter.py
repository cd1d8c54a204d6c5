"""The HMM agent's forward filter, compiled (numba; imported when the agent predicts, so the
kind module stays light to import)."""

from __future__ import annotations

import numpy as np
from numba import njit


@njit(cache=True)
def forward(loglik: np.ndarray, initial: np.ndarray, transmat: np.ndarray) -> np.ndarray:
    """Filtered state probabilities at each row's last bar: ``loglik`` is (rows, bars, states)."""
    n, length, k = loglik.shape
    out = np.empty((n, k))
    alpha = np.empty(k)
    prior = np.empty(k)
    for i in range(n):
        for j in range(k):
            alpha[j] = initial[j]
        for t in range(length):
            if t > 0:
                for j in range(k):
                    s = 0.0
                    for h in range(k):
                        s += alpha[h] * transmat[h, j]
                    prior[j] = s
            else:
                for j in range(k):
                    prior[j] = alpha[j]
            top = loglik[i, t, 0]
            for j in range(1, k):
                top = max(top, loglik[i, t, j])
            total = 0.0
            for j in range(k):
                alpha[j] = prior[j] * np.exp(loglik[i, t, j] - top)
                total += alpha[j]
            for j in range(k):
                alpha[j] /= total
        for j in range(k):
            out[i, j] = alpha[j]
    return out
