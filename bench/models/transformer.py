"""A GPT-2-style decoder-only Transformer (docs/paper.md section 5): token embedding + sinusoidal positions, causal
self-attention and a GELU MLP (4x width) in each block, an untied dense readout to the vocabulary.

ln: pre (LN before each sub-layer, and a final LN before the readout), post (LN after each residual sum, as in the
original Transformer), pre_no_final (Pre-LN without the final LN). LN eps 1e-6.
Every dense layer and the embedding come from bench.models.param (scale 1: no ReLU here), so SP and muP both apply;
muP also scales attention logits by 1/d_head instead of 1/sqrt(d_head).
LM-4-128 (vocabulary 4096, context 64) has 1,846,016 parameters.
Attention is written out (no fused kernel) so that Hessian-vector products (forward-over-reverse) work.
"""

from __future__ import annotations

import math

import torch
from torch import nn

from bench.models.param import Dense, Embedding


def sinusoidal_positions(context: int, width: int) -> torch.Tensor:
    """(context, width): sin on even, cos on odd features, wavelengths 2 pi * 10000^(2i / width)."""
    pos = torch.arange(context, dtype=torch.float32)[:, None]
    freq = torch.exp(-math.log(10000.0) * torch.arange(0, width, 2, dtype=torch.float32) / width)
    pe = torch.zeros(context, width)
    pe[:, 0::2] = torch.sin(pos * freq)
    pe[:, 1::2] = torch.cos(pos * freq)[:, : width // 2]
    return pe


class CausalSelfAttention(nn.Module):
    def __init__(self, width: int, heads: int, context: int, param: str):
        super().__init__()
        self.heads = heads
        self.qkv = Dense(width, 3 * width, param, scale=1.0)
        self.proj = Dense(width, width, param, scale=1.0)
        d_head = width // heads
        self.scale = 1.0 / d_head if param == "mup" else 1.0 / math.sqrt(d_head)
        self.register_buffer("mask", torch.ones(context, context).tril().bool(), persistent=False)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        B, T, C = x.shape
        q, k, v = self.qkv(x).view(B, T, 3, self.heads, C // self.heads).permute(2, 0, 3, 1, 4)
        att = (q @ k.transpose(-2, -1)) * self.scale
        att = att.masked_fill(~self.mask[:T, :T], float("-inf")).softmax(-1)
        return self.proj((att @ v).transpose(1, 2).reshape(B, T, C))


class Block(nn.Module):
    def __init__(self, width: int, heads: int, context: int, param: str, pre_ln: bool):
        super().__init__()
        self.pre_ln = pre_ln
        self.ln1 = nn.LayerNorm(width, eps=1e-6)
        self.attn = CausalSelfAttention(width, heads, context, param)
        self.ln2 = nn.LayerNorm(width, eps=1e-6)
        self.mlp = nn.Sequential(
            Dense(width, 4 * width, param, scale=1.0), nn.GELU(), Dense(4 * width, width, param, scale=1.0)
        )

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        if self.pre_ln:
            x = x + self.attn(self.ln1(x))
            return x + self.mlp(self.ln2(x))
        x = self.ln1(x + self.attn(x))
        return self.ln2(x + self.mlp(x))


class Transformer(nn.Module):
    def __init__(
        self,
        vocab_size: int,
        depth: int = 4,
        width: int = 128,
        heads: int = 4,
        context: int = 64,
        ln: str = "pre",
        param: str = "sp",
    ):
        super().__init__()
        self.embed = Embedding(vocab_size, width, param)
        self.register_buffer("positions", sinusoidal_positions(context, width), persistent=False)
        self.blocks = nn.ModuleList(Block(width, heads, context, param, ln != "post") for _ in range(depth))
        self.ln_f = nn.LayerNorm(width, eps=1e-6) if ln == "pre" else nn.Identity()
        self.readout = Dense(width, vocab_size, param, scale=1.0, readout=True)

    def forward(self, tokens: torch.Tensor) -> torch.Tensor:
        """(B, T) token ids -> (B, T, vocab) next-token logits."""
        x = self.embed(tokens) + self.positions[: tokens.shape[1]]
        for block in self.blocks:
            x = block(x)
        return self.readout(self.ln_f(x))
