"""MotionFlow: a small transformer that denoises one window of face motion, conditioned on audio and on
the motion before it (rectified-flow / flow-matching, x1-prediction).

One token per model frame over context + window + lookahead frames. Token i sums: its audio features
(projected; a learned "no audio" vector where the audio is masked: before the start, after the end, or
dropped for classifier-free guidance), its motion (the clean previous motion on context tokens, the noisy
sample x_t on window tokens, nothing on lookahead tokens; a learned "no motion" vector where the context
is missing), a learned position and role embedding, and the flow time t. A pre-norm transformer encoder
mixes them (bidirectional: the whole span is known when the window is generated), and a linear head
reads the clean motion x1 off the window tokens.

Inputs and outputs are the runtime's (talkface.motion.learned): audio (B, N, FEATURE_DIM), audio_mask
(B, N), context (B, P, MOTION_DIM), context_mask (B, P), noisy (B, W, MOTION_DIM), t (B,) ->
(B, W, MOTION_DIM), all float32, motion normalised by the data's mean and std.
"""

from __future__ import annotations

import math
from dataclasses import asdict, dataclass

import torch
from torch import nn

from talkface.motion.learned import FEATURE_DIM, MOTION_DIM


@dataclass(frozen=True)
class ModelConfig:
    context: int = 16  # P: previous motion frames (0.64 s at 25 fps)
    window: int = 4  # W: frames generated per call (160 ms)
    lookahead: int = 2  # L: audio frames after the window (80 ms)
    dim: int = 96
    layers: int = 3
    heads: int = 4
    ff: int = 192
    dropout: float = 0.1

    @property
    def span(self) -> int:
        return self.context + self.window + self.lookahead

    def to_dict(self) -> dict:
        return asdict(self)


class MotionFlow(nn.Module):
    def __init__(self, cfg: ModelConfig, feature_mean: torch.Tensor, feature_std: torch.Tensor):
        super().__init__()
        self.cfg = cfg
        d = cfg.dim
        # Input standardisation is part of the exported graph, so the runtime passes raw normalizer output.
        self.register_buffer("feature_mean", feature_mean.float().reshape(1, 1, -1))
        self.register_buffer("feature_std", feature_std.float().clamp_min(1e-3).reshape(1, 1, -1))
        self.audio_in = nn.Sequential(nn.Linear(FEATURE_DIM, d), nn.GELU(), nn.Linear(d, d))
        self.no_audio = nn.Parameter(torch.zeros(d))
        self.motion_in = nn.Linear(MOTION_DIM, d)
        self.no_motion = nn.Parameter(torch.zeros(d))
        self.pos = nn.Parameter(torch.randn(cfg.span, d) * 0.02)
        # Role of each token: 0 context, 1 window, 2 lookahead.
        roles = torch.tensor([0] * cfg.context + [1] * cfg.window + [2] * cfg.lookahead)
        self.register_buffer("roles", roles)
        self.role = nn.Embedding(3, d)
        self.time_in = nn.Sequential(nn.Linear(64, d), nn.GELU(), nn.Linear(d, d))
        layer = nn.TransformerEncoderLayer(
            d, cfg.heads, cfg.ff, cfg.dropout, activation="gelu", batch_first=True, norm_first=True
        )
        self.encoder = nn.TransformerEncoder(layer, cfg.layers, enable_nested_tensor=False)
        self.norm = nn.LayerNorm(d)
        self.head = nn.Linear(d, MOTION_DIM)

    def _time_embedding(self, t: torch.Tensor) -> torch.Tensor:
        """Sinusoidal embedding of t in [0, 1], (B,) -> (B, 64)."""
        freqs = torch.exp(torch.arange(32, device=t.device, dtype=torch.float32) * (-math.log(1000.0) / 31))
        angle = t[:, None] * 1000.0 * freqs[None, :]
        return torch.cat([torch.sin(angle), torch.cos(angle)], -1)

    def forward(
        self,
        audio: torch.Tensor,  # (B, N, FEATURE_DIM)
        audio_mask: torch.Tensor,  # (B, N) 1 = audio known
        context: torch.Tensor,  # (B, P, MOTION_DIM)
        context_mask: torch.Tensor,  # (B, P) 1 = motion known
        noisy: torch.Tensor,  # (B, W, MOTION_DIM)
        t: torch.Tensor,  # (B,)
    ) -> torch.Tensor:
        cfg = self.cfg
        b = audio.shape[0]
        a = self.audio_in((audio - self.feature_mean) / self.feature_std)  # (B, N, d)
        am = audio_mask[..., None]
        a = a * am + self.no_audio * (1 - am)
        ctx = self.motion_in(context)  # (B, P, d)
        cm = context_mask[..., None]
        ctx = ctx * cm + self.no_motion * (1 - cm)
        win = self.motion_in(noisy)  # (B, W, d)
        look = torch.zeros(b, cfg.lookahead, cfg.dim, dtype=a.dtype, device=a.device)
        m = torch.cat([ctx, win, look], 1)  # (B, N, d)
        h = (
            a
            + m
            + self.pos[None]
            + self.role(self.roles)[None]
            + self.time_in(self._time_embedding(t))[:, None]
        )
        h = self.norm(self.encoder(h))
        return self.head(h[:, cfg.context : cfg.context + cfg.window])  # (B, W, MOTION_DIM)
