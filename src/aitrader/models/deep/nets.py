"""The torch networks of the sequence kinds (imported only inside fit, predict and the codec).

Every network maps a batch of windows ``(batch, window, features)`` to class logits
``(batch, classes)`` and reads bars up to the window's last one only: the LSTM runs forward in
time, the TCN and the CNN pad on the left (causal convolutions), the Transformer masks attention
to earlier positions. All of them predict from the last time step.
"""

from __future__ import annotations

from typing import Any

import torch
from torch import nn


class LSTMNet(nn.Module):
    """An LSTM over the window; the last hidden state → dropout → linear head."""

    def __init__(self, features: int, classes: int, p: Any) -> None:
        super().__init__()
        self.lstm = nn.LSTM(
            features,
            p.hidden,
            num_layers=p.layers,
            batch_first=True,
            dropout=p.dropout if p.layers > 1 else 0.0,
        )
        self.head = nn.Sequential(nn.Dropout(p.dropout), nn.Linear(p.hidden, classes))

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        out, _ = self.lstm(x)
        return self.head(out[:, -1])


class CausalConv(nn.Module):
    """A 1-D convolution padded on the left only: output ``t`` reads inputs ``<= t``."""

    def __init__(self, channels_in: int, channels_out: int, kernel: int, dilation: int) -> None:
        super().__init__()
        self.pad = (kernel - 1) * dilation
        self.conv = nn.Conv1d(channels_in, channels_out, kernel, dilation=dilation)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.conv(nn.functional.pad(x, (self.pad, 0)))


class TemporalBlock(nn.Module):
    """Two dilated causal convolutions with a residual connection (Bai et al., 2018)."""

    def __init__(self, channels_in: int, channels: int, kernel: int, dilation: int, drop: float):
        super().__init__()
        self.body = nn.Sequential(
            CausalConv(channels_in, channels, kernel, dilation),
            nn.ReLU(),
            nn.Dropout(drop),
            CausalConv(channels, channels, kernel, dilation),
            nn.ReLU(),
            nn.Dropout(drop),
        )
        self.skip = nn.Conv1d(channels_in, channels, 1) if channels_in != channels else None

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        residual = x if self.skip is None else self.skip(x)
        return torch.relu(self.body(x) + residual)


class TCNNet(nn.Module):
    """Stacked temporal blocks with dilations 1, 2, 4, …; the last step → linear head."""

    def __init__(self, features: int, classes: int, p: Any) -> None:
        super().__init__()
        blocks = [
            TemporalBlock(features if i == 0 else p.hidden, p.hidden, p.kernel, 2**i, p.dropout)
            for i in range(p.levels)
        ]
        self.blocks = nn.Sequential(*blocks)
        self.head = nn.Linear(p.hidden, classes)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        out = self.blocks(x.transpose(1, 2))
        return self.head(out[:, :, -1])


class CNNNet(nn.Module):
    """The pattern agent: causal convolutions of growing kernel, each followed by ReLU, then
    the last step and the window's max over time (a shape seen anywhere in the window)."""

    def __init__(self, features: int, classes: int, p: Any) -> None:
        super().__init__()
        layers: list[nn.Module] = []
        for i in range(p.layers):
            layers += [CausalConv(features if i == 0 else p.hidden, p.hidden, p.kernel, 1)]
            layers += [nn.ReLU()]
        self.body = nn.Sequential(*layers)
        self.head = nn.Sequential(nn.Dropout(p.dropout), nn.Linear(2 * p.hidden, classes))

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        out = self.body(x.transpose(1, 2))
        pooled = torch.cat([out[:, :, -1], out.amax(dim=2)], dim=1)
        return self.head(pooled)


class TransformerNet(nn.Module):
    """A small Transformer encoder with learned positions and a causal attention mask."""

    def __init__(self, features: int, classes: int, p: Any) -> None:
        super().__init__()
        self.embed = nn.Linear(features, p.hidden)
        self.position = nn.Parameter(torch.zeros(1, p.window, p.hidden))
        layer = nn.TransformerEncoderLayer(
            p.hidden, p.heads, dim_feedforward=2 * p.hidden, dropout=p.dropout, batch_first=True
        )
        self.encoder = nn.TransformerEncoder(layer, p.layers, enable_nested_tensor=False)
        self.head = nn.Linear(p.hidden, classes)
        mask = torch.triu(torch.full((p.window, p.window), float("-inf")), diagonal=1)
        self.register_buffer("mask", mask, persistent=False)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        h = self.embed(x) + self.position
        out = self.encoder(h, mask=self.mask.to(h.dtype), is_causal=True)
        return self.head(out[:, -1])


NETS: dict[str, type[nn.Module]] = {
    "lstm": LSTMNet,
    "tcn": TCNNet,
    "cnn": CNNNet,
    "transformer": TransformerNet,
}
