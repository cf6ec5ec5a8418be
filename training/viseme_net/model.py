"""VisemeNet: a small 1-D conv net over the runtime's 100 Hz features (40 log-mel, voicing, periodicity)
that predicts each frame's viseme targets (jaw, round, spread) and viseme class. Convolutions are causal
except for a few frames of lookahead (lookahead(cfg) frames in all: 70 ms, so that the net can run live; 190
ms for the WIDE one, offline).

Inputs are normalised per utterance (normalise): log-mel minus its per-band mean (removes gain and a
fixed channel EQ); live, a running mean would take its place."""

from __future__ import annotations

from dataclasses import asdict, dataclass

import numpy as np
import torch
from torch import nn

from talkface.audio.heard_jaw import normalise  # the runtime's: one definition for both


@dataclass(frozen=True)
class Config:
    n_in: int = 42  # 40 log-mel + voicing + periodicity
    width: int = 96
    n_classes: int = 18
    # (kernel, dilation, lookahead frames) per residual block after the front conv (kernel 5, lookahead 2)
    blocks: tuple[tuple[int, int, int], ...] = (
        (3, 1, 1), (3, 2, 2), (3, 2, 2), (3, 4, 0), (3, 8, 0), (3, 16, 0), (3, 1, 0)
    )  # fmt: skip


# The offline heard jaw's net (finetune.py): the same net hearing 190 ms ahead (blocks 4 and 5 centred), for
# recordings known whole. Real lips move ahead of the sounds they make; fine-tuned on the real jaws, it
# follows them at r 0.384-0.403 alone on the folds, against 0.328-0.334 for the 70-ms net (finetune.py).
WIDE = Config(blocks=((3, 1, 1), (3, 2, 2), (3, 2, 2), (3, 4, 4), (3, 8, 8), (3, 16, 0), (3, 1, 0)))


def lookahead(cfg: Config) -> int:
    return 2 + sum(b[2] for b in cfg.blocks)


class _Conv(nn.Module):
    """Conv1d padded so that output t sees inputs t - (k-1)*d + ahead .. t + ahead."""

    def __init__(self, c_in: int, c_out: int, k: int, d: int, ahead: int):
        super().__init__()
        assert ahead % d == 0 and ahead <= (k - 1) * d
        self.pad = ((k - 1) * d - ahead, ahead)
        self.conv = nn.Conv1d(c_in, c_out, k, dilation=d)

    def forward(self, x: torch.Tensor) -> torch.Tensor:  # (B, C, T)
        return self.conv(nn.functional.pad(x, self.pad))


class VisemeNet(nn.Module):
    def __init__(self, cfg: Config = Config()):
        super().__init__()
        self.cfg = cfg
        w = cfg.width
        self.front = _Conv(cfg.n_in, w, 5, 1, 2)
        self.blocks = nn.ModuleList([_Conv(w, w, k, d, a) for k, d, a in cfg.blocks])
        self.norms = nn.ModuleList([nn.BatchNorm1d(w) for _ in cfg.blocks])
        self.head = nn.Conv1d(w, 3 + cfg.n_classes, 1)

    def forward(self, x: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
        """x (B, T, n_in) -> viseme targets (B, T, 3), class logits (B, T, n_classes)."""
        h = self.front(x.transpose(1, 2))  # (B, W, T)
        for conv, norm in zip(self.blocks, self.norms, strict=True):
            h = h + conv(torch.relu(norm(h)))
        out = self.head(torch.relu(h)).transpose(1, 2)  # (B, T, 3 + n_classes)
        return out[..., :3], out[..., 3:]

    def meta(self) -> dict:
        return asdict(self.cfg)


@torch.no_grad()
def predict(net: VisemeNet, inputs: np.ndarray) -> np.ndarray:
    """(T, 42) runtime features -> (T, 3 + n_classes): viseme targets, then class probabilities."""
    net.eval()
    x = torch.from_numpy(normalise(inputs))[None]
    reg, logits = net(x)
    return torch.cat([reg, logits.softmax(-1)], -1)[0].numpy()
