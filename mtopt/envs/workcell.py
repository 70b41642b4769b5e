"""The simulated MT-Opt workcell: a Gymnasium environment on MuJoCo (see ``docs/workcell.md``).

A 4-DoF parallel-jaw gripper (x, y, z, yaw, driven by position servos with gravity
compensation) works over two bins: the right bin holds the objects, the left bin a divided plate.
One policy step is ``substeps`` physics steps taken by a single ``mujoco.mj_step`` call.
"""

from __future__ import annotations

import logging
import math
from typing import Any

import gymnasium as gym
import mujoco
import numpy as np

from mtopt.envs import predicates, rendering, scene
from mtopt.envs.arrange import SceneArrangementMixin
from mtopt.envs.workcell_config import (
    GRIPPER_DIM,
    OBJECT_DIM,
    OBJECT_FIELDS,
    PLATE_DIM,
    RESET_OPTIONS,
    SCENES,
    WORKSPACE_HIGH,
    WORKSPACE_LOW,
    WorkcellConfig,
    state_layout,
)
from mtopt.envs.workcell_tasks import NEW_TASKS, workcell_task_set

logger = logging.getLogger(__name__)


def _log_mujoco_warning(message: str) -> None:
    # A blow-up ends the episode as physics_unstable, which the fleet and the evaluation count
    # and report once; one line per blow-up is only debugging detail.
    level = logging.DEBUG if "simulation is unstable" in message else logging.WARNING
    logger.log(level, "MuJoCo: %s", message)


if mujoco.get_mju_user_warning() is None:
    # MuJoCo's default handler prints to stderr and appends to MUJOCO_LOG.TXT in the working
    # directory; route its warnings through logging instead (a user's own handler is kept)
    mujoco.set_mju_user_warning(_log_mujoco_warning)

_BLOW_UP_WARNINGS = (
    mujoco.mjtWarning.mjWARN_BADQPOS,
    mujoco.mjtWarning.mjWARN_BADQVEL,
    mujoco.mjtWarning.mjWARN_BADQACC,
)

DIVERGED_LOW = np.array([-0.45, -0.70, -0.05])
"""Lower corner (m) of the box a present object never leaves unless the contact solver threw
it (the bins span |x| < 0.2, |y| < 0.41 and held objects stay below 0.35 m). In 6,000
scripted episodes 99.8 % of the object positions were within |x| < 0.17, -0.39 < y < 0.34,
z < 0.24; 1 in 1,700 were outside |x| < 0.4, |y| < 0.65, -0.05 < z < 0.6: objects flung up
to 1.5 m (older logs: up to 1e5 m)."""
DIVERGED_HIGH = np.array([0.45, 0.70, 0.60])
"""Upper corner (m) of that box."""
SCENE_ATTEMPTS = 20
"""Scenes sampled at most per reset before giving up (:meth:`WorkcellEnv._new_scene`)."""
CAMERAS: tuple[str, ...] = ("shoulder", "side_left", "side_right")
"""The workcell's cameras: over the shoulder (the ``image`` observation) and the two side views
(``side_images``)."""
DIVERGED_MOVE_STEPS = 3.0
"""A gripper translation longer than this many ``max_translation`` in one step is a blow-up
too (the position servo moves at most ``sqrt(3)`` of them; jumps of 0.3 m were logged)."""


class WorkcellEnv(SceneArrangementMixin, gym.Env):
    """The MT-Opt workcell as a Gymnasium environment (see ``docs/workcell.md``).

    Action ``(dx, dy, dz, dyaw, gripper, terminate)``; observations ``state``,
    ``gripper_status``, ``gripper_height``, ``gripper_motion`` (the gripper's achieved
    translation during the last step, m; zeros after a reset: a blocked push shows as a
    commanded move with no motion) and, if configured, ``image`` / ``side_images``.
    ``info["success"]`` (bool vector over ``info["task_names"]``) is set on the final step.
    ``arrange`` / ``set_lighting`` (:mod:`mtopt.envs.arrange`) build outcome examples.
    """

    metadata = {"render_modes": ["rgb_array"], "render_fps": 10}  # noqa: RUF012

    def __init__(self, config: WorkcellConfig | None = None, render_mode: str | None = None):
        self.config = config if config is not None else WorkcellConfig()
        if render_mode not in (None, "rgb_array"):
            raise ValueError(f"render_mode must be None or 'rgb_array', got {render_mode!r}")
        self.render_mode = render_mode
        cfg = self.config
        self.task_set = workcell_task_set()
        self.task_names: tuple[str, ...] = (*self.task_set.names, *NEW_TASKS)
        """The tasks judged in ``info["success"]``: the task set's 12, then :data:`NEW_TASKS`."""
        self.model = mujoco.MjModel.from_xml_string(scene.build_mjcf(cfg.n_slots))
        self.model.opt.timestep = cfg.timestep
        self.model.opt.impratio = cfg.impratio
        self.model.opt.noslip_iterations = cfg.noslip_iterations
        self.data = mujoco.MjData(self.model)
        self._contacts = predicates.ContactIndex(self.model, cfg.n_slots)
        self._backend = rendering.resolve_backend(cfg.render_backend)
        self._cameras: rendering.CameraRig | None = None
        m = self.model
        self._body = np.array([m.body(scene.slot_body_name(i)).id for i in range(cfg.n_slots)])
        self._qadr = np.array([m.jnt_qposadr[m.body_jntadr[b]] for b in self._body])
        self._vadr = np.array([m.jnt_dofadr[m.body_jntadr[b]] for b in self._body])
        for v in self._vadr:
            m.dof_damping[v + 3 : v + 6] = scene.OBJECT_ANGULAR_DAMPING
        self._geoms = np.array(
            [
                [m.geom(scene.category_geom_name(i, c)).id for c in scene.CATEGORIES]
                for i in range(cfg.n_slots)
            ]
        )
        self._plate_geoms = np.flatnonzero(m.geom_bodyid == m.body("plate").id)
        self._inertia = scene.category_inertia()
        self._cats = np.full(cfg.n_slots, -1, dtype=np.int64)
        self._onehot = np.zeros((cfg.n_slots, len(scene.CATEGORIES)), dtype=np.float32)
        self._plate = np.zeros(3)  # x, y, yaw
        self._steps = 0
        self._closed = False
        self._motion = np.zeros(3, dtype=np.float32)
        self._has_scene = False
        self._done = True
        self._task: str | None = None
        self.resampled_scenes = 0
        """Scenes discarded at reset because their settle blew up (:meth:`_new_scene`)."""
        self.state_layout = state_layout(cfg.n_slots)
        self._obj_slice = self.state_layout["objects"]
        if not np.array_equal(self._body, np.arange(self._body[0], self._body[0] + cfg.n_slots)):
            raise RuntimeError("object slot bodies must be consecutive in the model")
        self._body_range = (int(self._body[0]), int(self._body[0]) + cfg.n_slots)
        self.state_dim = GRIPPER_DIM + OBJECT_DIM * cfg.n_slots + PLATE_DIM
        self._update_template()
        self._scale = np.array([cfg.max_translation] * 3 + [cfg.max_yaw])
        self.action_space = gym.spaces.Box(
            low=np.array([-1, -1, -1, -1, 0, 0], dtype=np.float32),
            high=np.ones(6, dtype=np.float32),
            dtype=np.float32,
        )
        spaces: dict[str, gym.spaces.Space] = {
            "state": gym.spaces.Box(-np.inf, np.inf, (self.state_dim,), np.float32),
            "gripper_status": gym.spaces.Box(0.0, 1.0, (1,), np.float32),
            "gripper_height": gym.spaces.Box(-1.0, 1.0, (1,), np.float32),
            "gripper_motion": gym.spaces.Box(-1.0, 1.0, (3,), np.float32),
        }
        if cfg.image:
            size = (cfg.image_size, cfg.image_size, 3)
            spaces["image"] = gym.spaces.Box(0, 255, size, np.uint8)
        if cfg.side_images:
            size = (2, cfg.side_image_size, cfg.side_image_size, 3)
            spaces["side_images"] = gym.spaces.Box(0, 255, size, np.uint8)
        self.observation_space = gym.spaces.Dict(spaces)
        self._action_low = self.action_space.low.astype(np.float64)
        self._action_high = self.action_space.high.astype(np.float64)

    # -- reset ---------------------------------------------------------------------------
    def reset(
        self, *, seed: int | None = None, options: dict[str, Any] | None = None
    ) -> tuple[dict[str, np.ndarray], dict[str, Any]]:
        """Start an episode. Options: ``scene`` ("random" | "evaluation"), ``grasped`` (start
        holding a random object above the right bin), ``chain`` (keep the scene and whatever
        the gripper holds from the previous episode), ``task`` (a task name; the reward is its
        success on the final step)."""
        super().reset(seed=seed)
        options = dict(options or {})
        unknown = sorted(set(options) - set(RESET_OPTIONS))
        if unknown:
            raise ValueError(f"unknown reset option(s) {unknown}; allowed: {list(RESET_OPTIONS)}")
        kind = options.get("scene", "random")
        if kind not in SCENES:
            raise ValueError(f"reset option scene must be one of {SCENES}, got {kind!r}")
        flags = {}
        for key in ("grasped", "chain"):
            flags[key] = options.get(key, False)
            if not isinstance(flags[key], (bool, np.bool_)):
                raise ValueError(f"reset option {key} must be a bool, got {flags[key]!r}")
        task = options.get("task")
        if task is not None:
            if not isinstance(task, str):
                raise ValueError(f"reset option task must be a task name, got {task!r}")
            if task not in self.task_names:
                raise ValueError(f"unknown task {task!r}; known: {list(self.task_names)}")
        if flags["chain"]:
            if flags["grasped"]:
                raise ValueError("reset options chain=True and grasped=True are exclusive")
            if not self._has_scene:
                raise ValueError(
                    "reset option chain=True needs a previous episode whose scene is intact "
                    "(there was none, or its physics became unstable)"
                )
            self.data.ctrl[:4] = self.data.qpos[:4]
        else:
            self._new_scene(kind, bool(flags["grasped"]))
        self._task = task
        self._steps = 0
        self._motion[:] = 0.0
        self._done = False
        self._instabilities = self._blow_ups()
        obs = self._observe()
        return obs, {"task_names": self.task_names, "task": task}

    def _assign_categories(self, cats: np.ndarray) -> None:
        """Switch slot geoms/mass to ``cats`` (-1 = absent); returns after mj_setConst."""
        m = self.model
        changed = np.flatnonzero(cats != self._cats)
        for i in changed:
            old, new = self._cats[i], cats[i]
            if old >= 0:
                g = self._geoms[i, old]
                m.geom_contype[g] = m.geom_conaffinity[g] = 0
                m.geom_group[g] = scene.HIDDEN_GROUP
            b = self._body[i]
            if new >= 0:
                g = self._geoms[i, new]
                m.geom_contype[g] = m.geom_conaffinity[g] = 1
                m.geom_group[g] = scene.VISIBLE_OBJECT_GROUP
                mass, inertia = self._inertia[scene.CATEGORIES[new]]
                m.body_mass[b] = mass
                m.body_inertia[b] = inertia
            m.body_gravcomp[b] = 0.0 if new >= 0 else 1.0
            # the broad phase filters by body first (MuJoCo compiles a body's contype and
            # conaffinity as the OR of its geoms'); keep it in step with the live geom
            m.body_contype[b] = m.body_conaffinity[b] = int(new >= 0)
        if len(changed):
            self._cats = cats.copy()
            self._onehot[:] = 0.0
            present = cats >= 0
            self._onehot[np.flatnonzero(present), cats[present]] = 1.0
            mujoco.mj_setConst(m, self.data)

    def _new_scene(self, kind: str, grasped: bool) -> None:
        """Sample and settle a scene; a settle that blows up (a MuJoCo warning, or an object
        thrown out of the workcell) is resampled from the same stream. None did in 2,300
        measured resets (random, ``grasped`` and evaluation scenes): a guard, not a routine
        path."""
        for attempt in range(SCENE_ATTEMPTS):
            before = self._blow_ups()
            self._sample_scene(kind, grasped)
            if self._blow_ups() == before and not self._objects_diverged():
                self._has_scene = True
                self.resampled_scenes += attempt
                return
        self._has_scene = False
        raise RuntimeError(
            f"no stable {kind!r} scene in {SCENE_ATTEMPTS} attempts (every settle blew up)"
        )

    def _sample_scene(self, kind: str, grasped: bool) -> None:
        cfg, rng, m, d = self.config, self.np_random, self.model, self.data
        listed = scene.sample_categories(
            rng, kind, cfg.min_objects, cfg.max_objects, cfg.max_distractors, cfg.cloths
        )
        cats = np.full(cfg.n_slots, -1, dtype=np.int64)
        slots = rng.permutation(cfg.n_slots)[: len(listed)]
        cats[slots] = listed
        self._assign_categories(cats)
        mujoco.mj_resetData(m, d)
        # plate: pose and one of three colours
        px, py, pyaw = scene.sample_plate_pose(rng)
        self._plate[:] = (px, py, pyaw)
        d.mocap_pos[0] = (px, py, 0.0)
        d.mocap_quat[0] = scene.yaw_quat(pyaw)
        colour = scene.PLATE_COLORS[int(rng.integers(len(scene.PLATE_COLORS)))]
        m.geom_rgba[self._plate_geoms, :3] = colour
        # gripper: random pose above the right bin, open
        room = scene.BIN_HALF - 0.05
        gx, gy = rng.uniform(-room, room, size=2)
        gz = rng.uniform(*cfg.start_height)
        gyaw = rng.uniform(-math.pi / 2, math.pi / 2)
        d.qpos[:4] = (gx, gy - scene.BIN_CENTER_Y, gz, gyaw)
        d.qpos[4:6] = scene.MAX_HALF_OPENING
        d.ctrl[:6] = d.qpos[:6]
        self._closed = False
        # objects
        held = -1
        if grasped:  # the cloth if the scene has one (the new tasks' place-skill start)
            cloth = [s for s in slots if cats[s] == scene.CATEGORIES.index(scene.CLOTH)]
            held = int(rng.choice(cloth if cloth else slots))
        in_bin = [s for s in slots if s != held]
        poses = scene.sample_object_poses(rng, [int(cats[s]) for s in in_bin])
        for s, (x, y, z, yaw) in zip(in_bin, poses, strict=True):
            a = self._qadr[s]
            d.qpos[a : a + 3] = (x, y, z)
            d.qpos[a + 3 : a + 7] = scene.yaw_quat(yaw)
        for s in np.flatnonzero(cats < 0):
            a = self._qadr[s]
            d.qpos[a : a + 3] = (scene.PARK_POSITION[0] + 0.2 * s, *scene.PARK_POSITION[1:])
        if held >= 0:
            self._put_in_hand(held)
        self._update_template()
        mujoco.mj_step(m, d, nstep=cfg.settle_substeps)

    def _put_in_hand(self, slot: int) -> None:
        """Place ``slot`` between the open fingers and close them (``grasped`` reset)."""
        d = self.data
        _, hy, hz = scene.SHAPES[scene.CATEGORIES[self._cats[slot]]].half_extent
        z_local = min(scene.FINGER_LENGTH / 2, scene.FINGER_LENGTH - 0.006 - hz)
        a = self._qadr[slot]
        d.qpos[a : a + 3] = (d.qpos[0], d.qpos[1], d.qpos[2] + z_local)
        d.qpos[a + 3 : a + 7] = scene.yaw_quat(d.qpos[3])
        d.qpos[4:6] = hy + 0.001
        d.ctrl[4:6] = 0.0
        self._closed = True

    # -- step ----------------------------------------------------------------------------
    def _validate_action(self, action: Any) -> np.ndarray:
        if np.iscomplexobj(action):
            raise ValueError(f"action must be 6 real numbers, got complex values {action!r}")
        try:
            a = np.asarray(action, dtype=np.float64)
        except (TypeError, ValueError) as err:
            raise ValueError(f"action must be 6 numbers, got {action!r}") from err
        if a.shape != (6,):
            raise ValueError(f"action must have shape (6,), got shape {a.shape}")
        low, high = self._action_low, self._action_high
        ok = (a >= low - 1e-6) & (a <= high + 1e-6)  # False for NaN
        if not ok.all():
            names = ("dx", "dy", "dz", "dyaw", "gripper", "terminate")
            wrong = ", ".join(
                f"{names[i]}={float(a[i])!r} (allowed [{low[i]:g}, {high[i]:g}])"
                for i in np.flatnonzero(~ok)
            )
            raise ValueError(f"invalid action component(s): {wrong}")
        return np.minimum(np.maximum(a, low), high)

    def step(self, action: Any) -> tuple[dict[str, np.ndarray], float, bool, bool, dict[str, Any]]:
        """Apply one action: move by ``action[:4]`` (scaled, clipped to the workspace) and
        open/close the gripper over ``substeps`` physics steps, or, if ``terminate >= 0.5``,
        end the episode without moving."""
        if self._done:
            raise RuntimeError("episode is over; call reset() before step()")
        a = self._validate_action(action)
        d = self.data
        terminated = bool(a[5] >= 0.5)
        before = d.qpos[:3].copy()
        if not terminated:
            target = d.qpos[:4] + a[:4] * self._scale
            np.clip(target, WORKSPACE_LOW, WORKSPACE_HIGH, out=target)
            d.ctrl[:4] = target
            self._closed = bool(a[4] >= 0.5)
            d.ctrl[4:6] = 0.0 if self._closed else scene.MAX_HALF_OPENING
            mujoco.mj_step(self.model, d, nstep=self.config.substeps)
        self._motion[:] = d.qpos[:3] - before
        self._steps += 1
        unstable = self._physics_failed()
        truncated = not terminated and (unstable or self._steps >= self.config.max_steps)
        self._done = terminated or truncated
        info: dict[str, Any] = {"task_names": self.task_names, "task": self._task}
        reward = 0.0
        if self._done:
            if self.config.final_settle_substeps and not unstable:
                # the servos hold the last commanded pose; released objects come to rest
                mujoco.mj_step(self.model, d, nstep=self.config.final_settle_substeps)
                unstable = self._physics_failed()
            if unstable:
                # MuJoCo reset the simulation mid-step: the scene is gone, nobody succeeded
                logger.debug("physics became unstable at step %d; episode ended", self._steps)
                self._has_scene = False
                info["physics_unstable"] = True
                success = np.zeros(len(self.task_names), dtype=bool)
            else:
                success = self.success_vector()
            info["success"] = success
            if self._task is not None:
                reward = float(success[self.task_names.index(self._task)])
        return self._observe(), reward, terminated, truncated, info

    def _blow_ups(self) -> int:
        """MuJoCo's running count of NaN/huge position, velocity or acceleration events."""
        return sum(int(self.data.warning[w].number) for w in _BLOW_UP_WARNINGS)

    def _physics_failed(self) -> bool:
        """Whether MuJoCo hit a numerical blow-up (and reset ``data``) since the last check,
        or the simulation diverged without one (:meth:`_physics_diverged`)."""
        count = self._blow_ups()
        failed = count > self._instabilities
        self._instabilities = count
        return failed or self._physics_diverged()

    def _physics_diverged(self) -> bool:
        """A contact explosion that MuJoCo did not flag: a present object far outside the
        workcell, or a gripper jump no servo step can make."""
        limit = DIVERGED_MOVE_STEPS * self.config.max_translation
        jump = not float(np.linalg.norm(self._motion)) <= limit  # NaN too
        return jump or self._objects_diverged()

    def _objects_diverged(self) -> bool:
        """Whether a present object left the box ``DIVERGED_LOW``-``DIVERGED_HIGH`` (or is
        NaN)."""
        b0, b1 = self._body_range
        pos = self.data.xpos[b0:b1][~self._absent]
        inside = (pos >= DIVERGED_LOW) & (pos <= DIVERGED_HIGH)  # False for NaN
        return not bool(inside.all())

    # -- observations --------------------------------------------------------------------
    def _state(self) -> np.ndarray:
        d, q = self.data, self.data.qpos
        out = self._template.copy()  # category, present and plate entries are set at reset
        out[0:3] = q[0:3]
        out[3] = math.sin(q[3])
        out[4] = math.cos(q[3])
        out[5] = q[4] + q[5]
        obj = out[self._obj_slice].reshape(-1, OBJECT_DIM)
        b0, b1 = self._body_range
        obj[:, 0:3] = d.xpos[b0:b1]
        xmat = d.xmat[b0:b1]
        # yaw of the body's x axis projected on the floor, as (sin, cos)
        norm = np.maximum(np.hypot(xmat[:, 0], xmat[:, 3]), 1e-9)
        obj[:, 3] = xmat[:, 3] / norm
        obj[:, 4] = xmat[:, 0] / norm
        obj[self._absent] = 0.0
        return out

    def _update_template(self) -> None:
        """Static part of the state: category one-hots, present flags, plate pose."""
        t = np.zeros(self.state_dim, dtype=np.float32)
        obj = t[self._obj_slice].reshape(-1, OBJECT_DIM)
        obj[:, OBJECT_FIELDS["category"]] = self._onehot
        obj[:, OBJECT_FIELDS["present"]] = (self._cats >= 0)[:, None]
        px, py, pyaw = self._plate
        t[-PLATE_DIM:] = (px, py, math.sin(pyaw), math.cos(pyaw))
        self._template = t
        self._absent = self._cats < 0

    def _observe(self) -> dict[str, np.ndarray]:
        obs = {
            "state": self._state(),
            "gripper_status": np.array([float(self._closed)], dtype=np.float32),
            "gripper_height": np.array([self.data.qpos[2]], dtype=np.float32),
            "gripper_motion": self._motion.copy(),
        }
        if self.config.image:
            obs["image"] = self.render_image()
        if self.config.side_images:
            obs["side_images"] = self.render_side_images()
        return obs

    @property
    def task(self) -> str | None:
        """Task of the current episode (``reset(options={"task": ...})``), if any."""
        return self._task

    @property
    def categories(self) -> tuple[str | None, ...]:
        """Category of every object slot (``None`` for absent slots)."""
        return tuple(scene.CATEGORIES[c] if c >= 0 else None for c in self._cats)

    def slot_positions(self) -> np.ndarray:
        """World positions ``(n_slots, 3)`` of the object slots (parked ones included)."""
        return self.data.xpos[self._body].copy()

    # -- success -------------------------------------------------------------------------
    def scene_facts(self) -> predicates.SceneFacts:
        """The facts the success predicates read from the current state."""
        left, right, plate = self._contacts.touches(self.data)
        return predicates.SceneFacts(
            categories=self.categories,
            positions=self.slot_positions(),
            touch_left=left,
            touch_right=right,
            touch_plate=plate,
            plate_xy=self._plate[:2].copy(),
            plate_yaw=float(self._plate[2]),
            touch_objects=self._contacts.object_contacts(self.data),
        )

    def success_vector(self) -> np.ndarray:
        """Ground-truth success (bool, one per task in ``task_names``) of the current state."""
        if not self._has_scene:
            raise RuntimeError("call reset() before success_vector()")
        return predicates.success_vector(
            self.scene_facts(), self.task_names, self.config.lift_height
        )

    # -- rendering -----------------------------------------------------------------------
    def _rig(self) -> rendering.CameraRig:
        if self._cameras is None:
            self._cameras = rendering.CameraRig(self.model, self._backend)
        return self._cameras

    def render_image(self) -> np.ndarray:
        """Over-the-shoulder RGB image, uint8 ``(image_size, image_size, 3)``."""
        return self._rig().render(self.data, "shoulder", self.config.image_size)

    def render_side_images(self) -> np.ndarray:
        """Left and right side-camera images, uint8 ``(2, side_image_size, side_image_size, 3)``
        (inputs of the success detector)."""
        size = self.config.side_image_size
        rig = self._rig()
        return np.stack(
            [rig.render(self.data, "side_left", size), rig.render(self.data, "side_right", size)]
        )

    def render_camera(self, camera: str = "shoulder", size: int | None = None) -> np.ndarray:
        """RGB image, uint8 ``(size, size, 3)``, of a named camera (``shoulder``, ``side_left``
        or ``side_right``) at any size (default ``image_size``), apart from the observations:
        e.g. the larger view of an evaluation video (:mod:`mtopt.evaluation.video`)."""
        if camera not in CAMERAS:
            raise ValueError(f"unknown camera {camera!r}; the workcell's cameras are {CAMERAS}")
        size = self.config.image_size if size is None else size
        if isinstance(size, bool) or not isinstance(size, int) or not 16 <= size <= 1024:
            raise ValueError(f"image size must be an integer in [16, 1024], got {size!r}")
        return self._rig().render(self.data, camera, size)

    def render(self) -> np.ndarray | None:
        """Gymnasium render: the over-the-shoulder image for ``render_mode="rgb_array"``."""
        return self.render_image() if self.render_mode == "rgb_array" else None

    def close(self) -> None:
        """Release rendering resources."""
        if self._cameras is not None:
            self._cameras.close()
            self._cameras = None
