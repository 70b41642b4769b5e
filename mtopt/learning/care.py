"""CARE, contextual attention-based representations: ``architecture: care`` of the MLP
Q-networks.

Method (Sodhani, Zhang, Pineau 2021, "Multi-Task Reinforcement Learning with Context-based
Representations"): every task comes with metadata, a short description in words. A context
encoder turns its (pretrained, frozen) sentence embedding into a context embedding
``z_ctx``; a mixture of ``k`` state encoders produces ``k`` representations of the state,
which are combined with attention weights ``alpha = softmax(g(z_ctx))`` computed from the
context alone (so tasks with related descriptions share encoders), and the mixed
representation is concatenated with ``z_ctx`` before the actor's and critic's layers.

Here (:class:`CareMixture`, which :func:`mtopt.learning.network_builder.build_q_network` adds
to the MLP Q-network as ``care``):

* the metadata are the task's hand-written attribute words (:attr:`mtopt.tasks.Task.
  attributes`), which reach the network as the per-slot table
  :attr:`~mtopt.learning.networks.NetworkShape.task_attributes`. Each slot's words become a
  multi-hot vector over ``attribute_buckets`` buckets (a word's bucket is its CRC-32 modulo
  the bucket count: deterministic across processes, unlike Python's ``hash``), so the
  weights' shapes do not depend on the vocabulary and a task set grown with a new task and new
  words still loads a checkpoint. The table is a non-persistent buffer, rebuilt from the
  shape;
* the context encoder is two FC layers (``attribute_buckets -> context_width ->
  context_width``), the attention one FC layer from the context to ``care_encoders`` logits;
* the encoders are the variant's own state encoder (encoder 0, today's parameter names) and
  ``care_encoders - 1`` copies with their own weights (``care.encoders``): the flat state
  tower, or the ``objects`` encoder's per-slot and pooling layers; mixed are the encoders'
  per-state outputs (the pre-activation features and, for the object encoders, the per-slot
  embeddings, which ``objects-action`` turns into its per-(object, action) pre-activations
  with a shared linear map, so mixing the embeddings mixes those pre-activations);
* the context enters the mixed features through a linear map added to their pre-activation,
  which equals concatenating ``z_ctx`` to the input of their last layer.

Where this version differs from the paper:

* no pretrained language model: the context comes from a learned embedding of hashed
  hand-written words instead of a frozen sentence encoder's embedding of a description. The
  project's machines reach package registries only (no model hub), and the registry packages
  that bundle sentence-encoder weights are unofficial repackagings that pull in
  ``sentence-transformers``; none is a dependency of this project;
* the encoders also read the one-hot task (MT-Opt's convention, kept in every variant), so
  tasks with the same words still differ;
* everything is per state: the mixture and the context are computed once in
  :meth:`~mtopt.learning.networks.QNetwork.embed`, and the per-action part (action branch,
  merged layers, heads) is the variant's, unchanged, so CEM's cost per sample does not grow;
* one network scores Q; the paper's SAC agent has an actor and two critics, each with its
  own mixture.
"""

from __future__ import annotations

import copy
import zlib
from collections.abc import Callable, Mapping, Sequence

import torch
from torch import nn

from mtopt.learning.networks import NetworkShape, QNetworkConfig

EncoderRun = Callable[[nn.Module], dict[str, torch.Tensor]]
"""Runs one state encoder (a module holding the variant's encoder layers by name) and returns
its per-state outputs by name; ``features`` is always among them."""


def attribute_bucket(word: str, buckets: int) -> int:
    """The bucket of one attribute word: its UTF-8 CRC-32 modulo ``buckets``."""
    return zlib.crc32(word.encode("utf-8")) % buckets


def attribute_vectors(table: Sequence[Sequence[str]], buckets: int) -> torch.Tensor:
    """Multi-hot ``(len(table), buckets)`` float tensor of every slot's attribute words
    (a free slot's row is zeros)."""
    out = torch.zeros(len(table), buckets)
    for slot, words in enumerate(table):
        for word in words:
            out[slot, attribute_bucket(word, buckets)] = 1.0
    return out


class CareMixture(nn.Module):
    """Task context from the slots' attributes, attention over state encoders, and the
    mixture of their outputs (module docstring). ``encoder`` holds the network's own
    state-encoder layers by name (encoder 0, which stays the network's and is passed to
    :meth:`mix`); the mixture keeps ``care_encoders - 1`` copies of them with newly drawn
    weights. ValueError unless ``shape`` has every slot's attributes."""

    def __init__(
        self, encoder: Mapping[str, nn.Module], config: QNetworkConfig, shape: NetworkShape
    ) -> None:
        super().__init__()
        table, buckets, width = shape.task_attributes, config.attribute_buckets, config.mlp_width
        if len(table) != shape.task_capacity:
            raise ValueError(
                f"architecture 'care' needs every task slot's attributes "
                f"(NetworkShape.task_attributes, {shape.task_capacity} entries, from "
                f"network_shape()), got {len(table)} entries"
            )
        c = config.context_width
        self.register_buffer("attributes", attribute_vectors(table, buckets), persistent=False)
        self.context_encoder = nn.Sequential(nn.Linear(buckets, c), nn.ReLU(), nn.Linear(c, c))
        self.attention = nn.Linear(c, config.care_encoders)
        self.context_fc = nn.Linear(c, width, bias=False)
        self.encoders = nn.ModuleList(
            nn.ModuleDict({name: _fresh_copy(m) for name, m in encoder.items()})
            for _ in range(config.care_encoders - 1)
        )

    def context(self, task: torch.Tensor) -> torch.Tensor:
        """Context embeddings ``(B, context_width)`` of task slots ``task`` ``(B,)``."""
        return self.context_encoder(self.attributes[task.long()])

    def weights(self, context: torch.Tensor) -> torch.Tensor:
        """Attention weights ``(B, care_encoders)`` over the encoders (rows sum to 1)."""
        return torch.softmax(self.attention(torch.relu(context)), dim=-1)

    def mix(self, run: EncoderRun, owner: nn.Module, task: torch.Tensor) -> dict[str, torch.Tensor]:
        """``run`` on every encoder (``owner``, then the copies), each output mixed with the
        tasks' attention weights; the context's contribution added to ``features``."""
        context = self.context(task)
        alpha = self.weights(context)
        outs = [run(owner), *(run(enc) for enc in self.encoders)]
        mixed = {}
        for key, first in outs[0].items():
            a = alpha.view(*alpha.shape, *([1] * (first.dim() - 1)))  # (B, k, 1...)
            mixed[key] = (a * torch.stack([o[key] for o in outs], dim=1)).sum(dim=1)
        mixed["features"] = mixed["features"] + self.context_fc(context)
        return mixed


def _fresh_copy(module: nn.Module) -> nn.Module:
    """A copy of ``module`` with newly drawn weights (He init of its linear layers)."""
    new = copy.deepcopy(module)
    for m in new.modules():
        if isinstance(m, nn.Linear):
            nn.init.kaiming_normal_(m.weight, nonlinearity="relu")
            if m.bias is not None:
                nn.init.zeros_(m.bias)
    return new
