"""The one training loop of the sequence kinds (imported inside ``fit`` only: it needs torch).

Mini-batches of windows in a seeded random order, AdamW with gradient clipping, cross-entropy;
after each epoch the loss on the validation slice decides whether these weights are the best so
far; ``patience`` epochs without improvement end training. The best weights come back as
float32 numpy arrays on the CPU (device-independent).
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

import numpy as np
import torch
from torch import nn

from aitrader.models.deep.base import pad, windows

CLIP_NORM = 1.0
MIN_IMPROVEMENT = 1e-5


@dataclass(frozen=True)
class TrainRecord:
    """The kept weights, the epoch they come from (1-based) and the validation loss per epoch."""

    weights: dict[str, np.ndarray]
    best_epoch: int
    history: list[float]


def _validation_loss(
    net: nn.Module, padded: torch.Tensor, codes: torch.Tensor, rows: torch.Tensor, window: int
) -> float:
    net.eval()
    total = 0.0
    with torch.no_grad():
        for lo in range(0, len(rows), 4096):
            part = rows[lo : lo + 4096]
            logits = net(windows(padded, part, window))
            total += float(nn.functional.cross_entropy(logits, codes[part], reduction="sum"))
    return total / len(rows)


def _epoch(net: nn.Module, optimizer: Any, data: tuple[torch.Tensor, ...], p: Any) -> None:
    padded, codes, order = data
    net.train()
    for lo in range(0, len(order), p.batch_size):
        rows = order[lo : lo + p.batch_size]
        optimizer.zero_grad(set_to_none=True)
        loss = nn.functional.cross_entropy(net(windows(padded, rows, p.window)), codes[rows])
        loss.backward()
        nn.utils.clip_grad_norm_(net.parameters(), CLIP_NORM)
        optimizer.step()


def _snapshot(net: nn.Module) -> dict[str, np.ndarray]:
    return {k: v.detach().cpu().numpy().astype(np.float32) for k, v in net.state_dict().items()}


def train(
    net: nn.Module,
    features: np.ndarray,
    codes: np.ndarray,
    split: Any,
    p: Any,
    device: torch.device,
) -> TrainRecord:
    """Fit ``net`` on ``split.fit`` rows with early stopping on ``split.validate`` rows."""
    net.to(device)
    padded = pad(features, p.window, torch.float32, device)
    targets = torch.as_tensor(codes, dtype=torch.long, device=device)
    fit = torch.as_tensor(split.fit, device=device)
    validate = torch.as_tensor(split.validate, device=device)
    generator = torch.Generator(device="cpu").manual_seed(int(torch.initial_seed()))
    optimizer = torch.optim.AdamW(net.parameters(), lr=p.learning_rate, weight_decay=p.weight_decay)
    best, best_epoch, weights, history = float("inf"), 0, _snapshot(net), []
    for epoch in range(1, p.epochs + 1):
        order = fit[torch.randperm(len(fit), generator=generator).to(device)]
        _epoch(net, optimizer, (padded, targets, order), p)
        loss = _validation_loss(net, padded, targets, validate, p.window)
        history.append(loss)
        if loss < best - MIN_IMPROVEMENT:
            best, best_epoch, weights = loss, epoch, _snapshot(net)
        elif epoch - best_epoch >= p.patience:
            break
    return TrainRecord(weights, best_epoch, history)
