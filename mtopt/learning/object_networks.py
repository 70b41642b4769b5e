"""An object-centric state encoder for the MLP Q-network.

The ``state`` of an environment with a :class:`~mtopt.spec.StateStructure` (the workcell's)
holds the robot's gripper, a fixed number of object *slots* in random order and a context
block whose first entries are a planar target frame (the workcell's plate: x, y, sin, cos).
A flat MLP over that vector must learn the same skill once per slot and, with a
few thousand episodes, memorises scenes instead of generalising (measured: it fits Monte-Carlo
returns of the training episodes almost exactly while doing worse than a constant on held-out
episodes). This encoder gives the state network the inductive bias a conv net gets from
images:

* every slot goes through one shared MLP, with its position *relative to the gripper*, its
  position in the *plate's frame* (where place tasks are decided), its yaw, category, presence
  flag and the one-hot task (so a ``lift-banana`` query can single out bananas);
* the slot embeddings of present objects are pooled (max and mean), so the result does not
  depend on slot order or on how many objects there are;
* the gripper, the plate (absolute and gripper-relative), gripper status/height and the task
  form a global embedding that is added to the pooled one.

The action part (per CEM sample) is the MLP Q-network's, unchanged.
"""

from __future__ import annotations

import torch
from torch import nn

from mtopt.learning.networks import (
    NetworkShape,
    Observation,
    QNetworkConfig,
    StateEmbedding,
    input_features,
    task_one_hot,
)
from mtopt.learning.q_networks import MLPQNetwork, _he_init
from mtopt.spec import StateStructure


class ObjectMLPQNetwork(MLPQNetwork):
    """MLP Q-network whose per-state part is the object-centric encoder above."""

    STATE_ENCODER = ("slot_encoder", "global_fc", "pool_fc", "state_out")  # CARE copies them

    def __init__(self, config: QNetworkConfig, shape: NetworkShape) -> None:
        super().__init__(config, shape)
        if shape.structure is None:
            raise ValueError(
                f"state_encoder {config.state_encoder!r} needs the state's object structure "
                "(NetworkShape.structure); use state_encoder 'flat'"
            )
        st: StateStructure = shape.structure
        self.structure = st
        g, o, p = st.robot_dim, st.object_dim, st.context_dim
        self.n_slots = st.slots(shape.state_dim)
        width, cap = config.mlp_width, shape.task_capacity
        # gripper-relative xyz, plate-frame xy, the block, the task (+ the gripper frame)
        slot_in = 3 + 2 + o + cap + (4 if config.gripper_frame else 0)
        self.slot_encoder = nn.Sequential(
            nn.Linear(slot_in, width), nn.ReLU(), nn.Linear(width, width), nn.ReLU()
        )
        global_in = g + p + 2 + shape.input_dim + cap  # + plate xy - gripper xy, inputs, task
        inv = 1.0 / config.length_scale  # status and the like as they are; lengths rescaled
        scale = [
            inv if k in shape.length_inputs else 1.0 for k, w in shape.inputs for _ in range(w)
        ]
        self.register_buffer("input_scale", torch.tensor(scale), persistent=False)
        self.global_fc = nn.Linear(global_in, width)
        self.pool_fc = nn.Linear(2 * width, width)
        self.state_out = nn.Linear(width, width)
        self.state_tower = nn.Identity()  # replaced by the layers above
        _he_init(self)

    def _encode(self, obs: Observation, task: torch.Tensor) -> dict[str, torch.Tensor]:
        """The per-state tensors: slot embeddings, gripper, plate, presence, state features."""
        cfg, st, dim = self.config, self.structure, self.shape.state_dim
        state = obs["state"].float()
        if state.dim() != 2 or state.shape[1] != dim:
            raise ValueError(f"state must have shape (B, {dim}), got {tuple(state.shape)}")
        b = state.shape[0]
        g, o, p = st.robot_dim, st.object_dim, st.context_dim
        inv = 1.0 / cfg.length_scale
        grip = state[:, :g].clone()
        grip[:, :3] *= inv
        grip[:, st.opening_index : st.opening_index + 1] *= inv  # finger opening
        slots = state[:, g : g + self.n_slots * o].reshape(b, self.n_slots, o).clone()
        slots[:, :, :3] *= inv
        plate = state[:, dim - p :].clone()
        plate[:, :2] *= inv
        onehot = task_one_hot(task, self.shape.task_capacity)
        rel = slots[:, :, :3] - grip[:, None, :3]
        local = _plate_frame(slots[:, :, :2], plate)
        parts = [rel, local, slots, onehot[:, None, :].expand(b, self.n_slots, -1)]
        if cfg.gripper_frame:
            y, ry = st.yaw_index, st.robot_yaw_index
            parts.append(_gripper_frame(rel, slots[:, :, y : y + 2], state[:, ry : ry + 2]))
        x = torch.cat(parts, dim=2)
        flag = slots[:, :, st.presence_index : st.presence_index + 1]
        present = (flag > 0.5).to(x.dtype)
        plate_rel = plate[:, :2] - grip[:, :2]
        inputs = input_features(obs, b, self.shape) * self.input_scale
        glob = torch.cat([grip, plate, plate_rel, inputs, onehot], dim=1)

        def layers(enc: nn.Module) -> dict[str, torch.Tensor]:  # one encoder's layers
            h = enc.slot_encoder(x)  # (B, K, W)
            h_max, h_mean = _masked_pool(h, present, dim=1)
            z = torch.relu(enc.global_fc(glob) + enc.pool_fc(torch.cat([h_max, h_mean], dim=1)))
            # features: pre-activation; the action embedding is added
            return {"features": enc.state_out(z), "slot_embedding": h}

        return {
            **self._mixed(layers, task),
            "slots": slots,
            "present": present,
            "rel": rel,
            "grip": grip,
            "plate": plate,
        }

    def embed(self, obs: Observation, task: torch.Tensor) -> StateEmbedding:
        return self._state_embedding(self._encode(obs, task)["features"], task)


def _plate_frame(xy: torch.Tensor, plate: torch.Tensor) -> torch.Tensor:
    """Points ``(B, ..., 2)`` in the plate frame; ``plate`` is ``(B, 4)`` = x, y, sin, cos yaw."""
    shape = (plate.shape[0],) + (1,) * (xy.dim() - 2)
    d0 = xy[..., 0] - plate[:, 0].view(shape)
    d1 = xy[..., 1] - plate[:, 1].view(shape)
    sin, cos = plate[:, 2].view(shape), plate[:, 3].view(shape)
    return torch.stack([cos * d0 + sin * d1, -sin * d0 + cos * d1], dim=-1)


def _gripper_frame(
    rel: torch.Tensor, obj_yaw: torch.Tensor, grip_yaw: torch.Tensor
) -> torch.Tensor:
    """Each object as the parallel-jaw gripper sees it: ``(B, K, 4)`` = its horizontal offset
    ``rel[..., :2]`` rotated into the gripper's frame (along and across the closing direction)
    and ``sin, cos`` of twice its heading relative to the gripper's (a long axis and a parallel
    jaw are both symmetric under a half turn). ``obj_yaw`` is ``(B, K, 2)`` and ``grip_yaw``
    ``(B, 2)``, each ``(sin, cos)``; absent slots (all zeros) give zeros."""
    gs, gc = grip_yaw[:, None, 0], grip_yaw[:, None, 1]  # (B, 1)
    dx, dy = rel[..., 0], rel[..., 1]
    along = gc * dx + gs * dy
    across = -gs * dx + gc * dy
    os_, oc = obj_yaw[..., 0], obj_yaw[..., 1]
    s_rel = os_ * gc - oc * gs  # sin(o - g)
    c_rel = oc * gc + os_ * gs  # cos(o - g)
    return torch.stack([along, across, 2 * s_rel * c_rel, c_rel * c_rel - s_rel * s_rel], dim=-1)


PAIR_FEATURES = 6
"""Entries of :func:`pair_geometry` per (action, object) pair."""


def pair_geometry(rel: torch.Tensor, move: torch.Tensor, yaw_after: torch.Tensor) -> torch.Tensor:
    """Where every object would be relative to the gripper after every candidate move.

    ``rel`` ``(B, K, 3)`` are the objects' offsets from the gripper, ``move`` ``(B, N, 3)`` the
    candidate translations (same units) and ``yaw_after`` ``(B, N)`` the gripper's yaw after
    each move. Returns ``(B, N, K, 6)``: the offset after the move along and across the closing
    direction of the turned gripper, its height offset, its horizontal distance, and the
    absolute values of the along / across offsets. The distance and the absolute values make
    "the object ends up between the fingers" a linear function of the features, which a layer
    on the raw offsets can only build from several ReLUs."""
    post = rel[:, None, :, :] - move[:, :, None, :]  # (B, N, K, 3)
    c, s = torch.cos(yaw_after)[..., None], torch.sin(yaw_after)[..., None]  # (B, N, 1)
    along = c * post[..., 0] + s * post[..., 1]
    across = -s * post[..., 0] + c * post[..., 1]
    dist = torch.sqrt(along * along + across * across + 1e-6)
    return torch.stack([along, across, post[..., 2], dist, along.abs(), across.abs()], dim=-1)


def _masked_pool(
    h: torch.Tensor, present: torch.Tensor, dim: int
) -> tuple[torch.Tensor, torch.Tensor]:
    """Max and mean of ``h`` over ``dim`` counting only rows where ``present`` is 1 (zeros if
    none is present); ``present`` broadcasts against ``h``."""
    any_present = present.sum(dim=dim) > 0
    h_max = (h * present - (1.0 - present) * 1e4).amax(dim=dim)
    h_max = torch.where(any_present, h_max, torch.zeros_like(h_max))
    h_mean = (h * present).sum(dim=dim) / present.sum(dim=dim).clamp(min=1.0)
    return h_max, h_mean


class ObjectActionQNetwork(ObjectMLPQNetwork):
    """The object-centric network plus a per-(object, action) branch.

    Where an object will be relative to the gripper after a move is what decides a grasp, and
    pooling objects before the action enters forces the network to encode every object's
    offset in a fixed vector. This branch instead pairs every object slot with every candidate
    action: the object's offset from the gripper *after* the action (the same linear map is
    applied to the offset before the move and to the move, so it is exact) and its yaw
    relative to the rotated gripper (``sin/cos 2*angle``, a parallel gripper's symmetry) go
    through two layers of width ``slot_action_width``, pooled over present objects. The
    gripper's plate-frame position and height after the move feed the action branch too.
    Per CEM sample the cost is ``n_slots * slot_action_width**2`` multiply-adds.
    """

    def __init__(self, config: QNetworkConfig, shape: NetworkShape) -> None:
        super().__init__(config, shape)
        width, wa = config.mlp_width, config.slot_action_width
        self.slot_pre = nn.Linear(width, wa)
        self.offset_fc = nn.Linear(3, wa, bias=False)
        self.yaw_fc = nn.Linear(2, wa, bias=False)
        self.slot_action_fc = nn.Linear(shape.action_dim, wa, bias=False)
        self.slot_hidden = nn.Linear(wa, wa)
        self.slot_out = nn.Linear(2 * wa, width, bias=False)
        self.move_fc = nn.Linear(3, width, bias=False)
        self.pair_fc = nn.Linear(PAIR_FEATURES, wa, bias=False) if config.pair_geometry else None
        _he_init(self)

    def embed(self, obs: Observation, task: torch.Tensor) -> StateEmbedding:
        enc = self._encode(obs, task)
        slots, grip = enc["slots"], enc["grip"]
        # yaw term: W_s sin(2(o - g')) + W_c cos(2(o - g')) with g' the gripper yaw after the
        # action = cos(2g') * U + sin(2g') * V, where U, V depend on the state only
        y, ry = self.structure.yaw_index, self.structure.robot_yaw_index
        two_o = 2.0 * torch.atan2(slots[:, :, y], slots[:, :, y + 1])  # (B, K)
        sin_o, cos_o = torch.sin(two_o)[..., None], torch.cos(two_o)[..., None]
        w_s, w_c = self.yaw_fc.weight[:, 0], self.yaw_fc.weight[:, 1]
        b = slots.shape[0]
        coeff = torch.stack(
            [
                self.slot_pre(enc["slot_embedding"]) + self.offset_fc(enc["rel"]),
                w_s * sin_o + w_c * cos_o,
                w_c * sin_o - w_s * cos_o,
            ],
            dim=1,
        ).reshape(b, 3, -1)  # (B, 3, K * Wa)
        extras = {
            "slot_coeff": coeff,
            "grip_yaw": torch.atan2(grip[:, ry], grip[:, ry + 1]),
            "present": enc["present"],
            "grip_xyz": grip[:, :3],
            "plate": enc["plate"],
            "rel": enc["rel"],
        }
        return self._state_embedding(enc["features"], task, extras)

    def q_logits_from_embedding(
        self, embedding: StateEmbedding, actions: torch.Tensor
    ) -> torch.Tensor:
        self._check_actions(embedding, actions)
        cfg, st, ex = self.config, self.structure, embedding.extras
        if ex is None:
            raise ValueError("embedding lacks the objects-action extras; use this net's embed()")
        b, n = actions.shape[:2]
        k, wa = self.n_slots, cfg.slot_action_width
        move = actions[..., :3] * (st.action_translation / cfg.length_scale)  # (B, N, 3)
        per_action = self.slot_action_fc(actions) - self.offset_fc(move)  # (B, N, Wa)
        two_g = 2.0 * (ex["grip_yaw"][:, None] + actions[..., 3] * st.action_yaw)  # (B, N)
        mix = torch.stack([torch.ones_like(two_g), torch.cos(two_g), torch.sin(two_g)], dim=-1)
        # (B, N, K * Wa): pre-activation of every (action, object) pair
        z = torch.bmm(mix, ex["slot_coeff"]).view(b, n, k, wa)
        if self.pair_fc is not None:
            yaw_after = ex["grip_yaw"][:, None] + actions[..., 3] * st.action_yaw
            z = z + self.pair_fc(pair_geometry(ex["rel"], move, yaw_after))
        if torch.is_grad_enabled():
            z = torch.relu(self.slot_hidden(torch.relu(z + per_action[:, :, None])))
            z = z * ex["present"][:, None]
        else:  # CEM / targets: the same arithmetic in place, without big temporaries
            z.add_(per_action[:, :, None]).relu_()
            z = self.slot_hidden(z).relu_().mul_(ex["present"][:, None])
        # absent slots are 0 and every entry is >= 0, so they never win the max
        count = ex["present"].sum(dim=1).clamp(min=1.0)[:, None]  # (B, 1, 1)
        pooled = self.slot_out(torch.cat([z.amax(dim=2), z.sum(dim=2) / count], dim=-1))
        after = ex["grip_xyz"][:, None] + move
        plate_xy = _plate_frame(after[..., :2], ex["plate"])
        moved = self.move_fc(torch.cat([plate_xy, after[..., 2:3]], dim=-1))
        x = torch.relu(embedding.features.unsqueeze(1) + self.action_fc(actions) + pooled + moved)
        return self.heads(self._merged(x, embedding), embedding.task)
