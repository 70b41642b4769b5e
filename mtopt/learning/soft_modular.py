"""Soft modularization: ``architecture: soft-modular`` of the MLP Q-networks.

Method (Yang, Xu, Wu, Wang 2020, "Multi-Task Reinforcement Learning with Soft
Modularization"): the policy and Q-function are a *base network* of ``L`` layers of ``n``
modules each, and a *routing network* that decides, per state and task, how strongly module
``j`` of layer ``l`` feeds module ``i`` of layer ``l + 1``. The routing network reads the
element-wise product ``u = f(s) * h(z)`` of a state embedding ``f(s)`` and a learned
embedding ``h(z)`` of the one-hot task ``z``; its first routing is
``p^1 = W_d^1 relu(u)``, every later one also reads the previous routing,
``p^{l+1} = W_d^{l+1} relu(W_u^{l+1} p^l * u)``, and each ``p^l`` is reshaped to ``n x n`` and
normalised with a softmax over the source modules ``j``. Module ``i`` of layer ``l + 1`` gets
``sum_j p^l_ij * out^l_j``; every module is one FC layer with a ReLU.

Here (:class:`SoftModular`) the routes are computed once per state in
:meth:`~mtopt.learning.networks.QNetwork.embed` and carried in
:attr:`~mtopt.learning.networks.StateEmbedding.extras` (``routes`` ``(B, L-1, n, n)`` and
``route_out`` ``(B, n)``); the base network runs once per CEM sample in
``q_logits_from_embedding``, in place of the ``merged`` FC layers that follow the addition of
the action embedding. :func:`mtopt.learning.network_builder.build_q_network` adds it to the
MLP Q-network as ``modular`` (and empties its ``merged`` layers).

Where this version differs from the paper:

* the state embedding ``f(s)`` is the variant's own per-state embedding (``relu`` of the flat,
  ``objects`` or ``objects-action`` encoder's output), which already read the one-hot task
  (MT-Opt's convention, kept in every variant), not a separate embedding of the raw state;
* the routes depend on the state and task only, never on the action: they are computed once
  per state, so that CEM's per-sample cost is the base network's modules alone;
* the base network's input is the MLP trunk's merge of the state and action embeddings,
  ``relu(features + action_fc(a))``, which every first-layer module reads, rather than the
  raw state and action;
* the last layer's modules are combined by one more routed softmax over the ``n`` modules
  (``route_out``, computed like the others from the last routing), and the result goes to
  MT-Opt's output head(s) (``heads: single`` or ``multi``) instead of one output layer;
* one Q-network is routed (MT-Opt scores actions with CEM); the paper routes the SAC actor
  and critics it trains;
* every routing is exactly the two maps of the equations above (``W_u``, ``W_d``), with
  PyTorch's default initialisation, so the routes start close to uniform; the modules get He
  initialisation like the rest of the trunk.
"""

from __future__ import annotations

import math

import torch
from torch import nn

from mtopt.learning.networks import NetworkShape, QNetworkConfig, StateEmbedding, task_one_hot


class SoftModular(nn.Module):
    """Routing network (per state) and routed base network of modules (per action) of an MLP
    trunk of width ``mlp_width``: ``module_layers`` layers of ``modules`` modules of width
    ``module_width`` (or ``mlp_width``), for ``shape.task_capacity`` task slots."""

    def __init__(self, config: QNetworkConfig, shape: NetworkShape) -> None:
        super().__init__()
        width, layers, task_capacity = config.mlp_width, config.module_layers, shape.task_capacity
        n, m = config.modules, config.module_width or width
        self.n_modules, self.n_layers, self.module_width = n, layers, m
        self.task_capacity = task_capacity
        # routing network: h(z), then per routing W_u (from the previous routing) and W_d
        self.task_embedding = nn.Linear(task_capacity, width, bias=False)
        self.route_in = nn.ModuleList(nn.Linear(n * n, width) for _ in range(layers - 1))
        self.route_out = nn.ModuleList(
            nn.Linear(width, n * n if r < layers - 1 else n) for r in range(layers)
        )
        # base network: every first-layer module reads the merged input; later modules are
        # grouped FC layers (one weight matrix per module)
        self.first = nn.Linear(width, n * m)
        nn.init.kaiming_normal_(self.first.weight, nonlinearity="relu")
        nn.init.zeros_(self.first.bias)
        std = math.sqrt(2.0 / m)
        self.weights = nn.ParameterList(
            nn.Parameter(torch.randn(n, m, m) * std) for _ in range(layers - 1)
        )
        self.biases = nn.ParameterList(nn.Parameter(torch.zeros(n, m)) for _ in range(layers - 1))

    def routes(self, features: torch.Tensor, task: torch.Tensor) -> dict[str, torch.Tensor]:
        """Routing probabilities of states with pre-activation embeddings ``features``
        ``(B, width)`` and task slots ``task`` ``(B,)``: ``routes`` ``(B, L-1, n, n)``, row
        ``i`` of routing ``l`` the weights of layer ``l``'s modules feeding module ``i`` of
        layer ``l + 1``, and ``route_out`` ``(B, n)``, the weights combining the last layer."""
        b, n = features.shape[0], self.n_modules
        u = torch.relu(features) * self.task_embedding(task_one_hot(task, self.task_capacity))
        logits = self.route_out[0](torch.relu(u))
        routes = []
        for r in range(self.n_layers - 1):
            p = torch.softmax(logits.view(b, n, n), dim=-1)
            routes.append(p)
            logits = self.route_out[r + 1](torch.relu(self.route_in[r](p.reshape(b, -1)) * u))
        stacked = torch.stack(routes, dim=1) if routes else features.new_zeros(b, 0, n, n)
        return {"routes": stacked, "route_out": torch.softmax(logits, dim=-1)}

    def forward(self, x: torch.Tensor, embedding: StateEmbedding) -> torch.Tensor:
        """The base network on merged inputs ``x`` ``(B, N, width)`` with the routes of
        ``embedding``; returns ``(B, N, module_width)``."""
        ex = embedding.extras
        if ex is None or "routes" not in ex:
            raise ValueError("embedding lacks the soft-modular routes; use this net's embed()")
        b, k = x.shape[:2]
        n, m = self.n_modules, self.module_width
        h = torch.relu(self.first(x)).view(b, k, n, m)  # every first-layer module reads x
        for layer, (w, bias) in enumerate(zip(self.weights, self.biases, strict=True)):
            # module i's input, sum_j p_ij out_j, laid out module-major for its own FC layer
            mixed = torch.einsum("bij,bkjm->ibkm", ex["routes"][:, layer], h)
            out = torch.baddbmm(bias[:, None, :], mixed.reshape(n, b * k, m), w).relu_()
            h = out.view(n, b, k, m).permute(1, 2, 0, 3)  # (B, N, n, m)
        return torch.einsum("bi,bkim->bkm", ex["route_out"], h)
