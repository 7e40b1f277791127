"""The masked language modelling head and loss shared by `declip_mlm` and `flava_mlm`.

BERT's head (Devlin et al. 2018; DeCLIP §3.3 text SS, FLAVA A.1 MLM): dense + GELU +
LayerNorm over the token state, then logits over the vocabulary through the text tower's
token embedding (tied weights) plus a bias. Only the selected positions are scored, so
the vocabulary-sized matrix is computed for ~15% of the real tokens. The masked caption
goes through the text tower **bidirectionally** (`DualEncoder.text_pass(causal=False)`);
the contrastive objectives keep using the clean caption's features.
"""

from __future__ import annotations

import torch
import torch.nn.functional as F
from torch import nn

from training.objectives.base import ModelInfo, Objective, ObjectiveOptions
from training.objectives.functional import IGNORE_INDEX, mask_tokens, mlm_loss


class MlmOptions(ObjectiveOptions):
    prob: float = 0.15  # share of real tokens selected (80% <mask>, 10% random, 10% unchanged)


class MlmHead(nn.Module):
    def __init__(self, width: int, vocab_size: int) -> None:
        super().__init__()
        self.dense = nn.Linear(width, width)
        self.norm = nn.LayerNorm(width)
        self.bias = nn.Parameter(torch.zeros(vocab_size))

    def forward(self, states: torch.Tensor, embedding: torch.Tensor) -> torch.Tensor:
        h = self.norm(F.gelu(self.dense(states)))
        return h @ embedding.T + self.bias


class MaskedLanguageModelling(Objective):
    """The shared objective body; the registered names differ in the modalities they run on."""

    Options = MlmOptions
    batch_members = ("txt",)

    def __init__(self, options: MlmOptions, info: ModelInfo = ModelInfo()) -> None:
        super().__init__()
        self.prob = options.prob
        self.mask_id, self.vocab_size, self.special_ids = info.mask_id, info.vocab_size, info.special_ids
        self.head = MlmHead(info.text_width, info.vocab_size)
        self._accuracy: float | None = None

    def forward(self, outputs, batch, model) -> torch.Tensor:
        ids, labels = mask_tokens(
            batch["text"], batch["text_mask"], self.mask_id, self.vocab_size, self.special_ids, prob=self.prob
        )
        _, states = model.text_pass(ids, causal=False, trim=True)
        labels = labels[:, : states.shape[1]]  # trimmed positions are padding: never selected
        selected = labels != IGNORE_INDEX  # only these positions are scored
        logits = self.head(states[selected], model.text.token_embedding.weight)
        target = labels[selected]
        with torch.no_grad():
            self._accuracy = (logits.argmax(-1) == target).float().mean().item() if target.numel() else None
        return mlm_loss(logits, target)  # 0, still on the graph, when nothing was drawn

    def log_metrics(self) -> dict[str, float]:
        return {} if self._accuracy is None else {"accuracy": self._accuracy}
