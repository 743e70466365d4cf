"""The float head of IG-LLM and igbench's value embedding (torch).

NumberHead: the paper's head, Tanh -> Linear(d, d) -> GELU -> Linear(d, 1), applied to the LM's final
hidden state at each position whose next token is the number placeholder; it regresses the raw value.

ValueEmbedding (beyond the paper): maps a value back to the LM's embedding space, Linear(1, d) -> GELU
-> Linear(d, d), added to the placeholder's input embedding, so the steps after a number see which
number was written (ground truth while training, the head's prediction while decoding). The last layer
starts at zero, so the model starts exactly as the paper's.
"""
from __future__ import annotations

import torch
from torch import nn


class NumberHead(nn.Module):
    def __init__(self, hidden_size: int):
        super().__init__()
        self.net = nn.Sequential(nn.Tanh(), nn.Linear(hidden_size, hidden_size), nn.GELU(), nn.Linear(hidden_size, 1))

    def forward(self, hidden: torch.Tensor) -> torch.Tensor:
        weight = self.net[1].weight
        return self.net(hidden.to(weight.dtype)).squeeze(-1)


class ValueEmbedding(nn.Module):
    def __init__(self, hidden_size: int):
        super().__init__()
        self.net = nn.Sequential(nn.Linear(1, hidden_size), nn.GELU(), nn.Linear(hidden_size, hidden_size))
        nn.init.zeros_(self.net[2].weight)
        nn.init.zeros_(self.net[2].bias)

    def forward(self, values: torch.Tensor) -> torch.Tensor:
        weight = self.net[0].weight
        return self.net(values.to(weight.dtype).unsqueeze(-1))
