"""Robots side by side in one process (lockstep collection): same draws, batched CEM."""

from __future__ import annotations

import numpy as np
import pytest
import torch

from mtopt.data.log import EpisodeLogConfig, EpisodeLogReader, in_robot_order
from mtopt.envs import make_spec
from mtopt.learning.cem import CEMConfig
from mtopt.learning.network_builder import build_q_network
from mtopt.policies import PolicyConfig
from mtopt.policies.q_policy import q_policy_from
from mtopt.system.builder import PipelineBuilder
from mtopt.system.fleet import FleetConfig, collect_in_process, process_groups
from mtopt.system.lockstep import lockstep_episodes
from mtopt.system.robot import Robot, RobotConfig
from mtopt.system.training_config import TrainConfig

POINTMASS = make_spec("pointmass")
WORKCELL = make_spec("workcell")
SHARDS = EpisodeLogConfig(shard_episodes=3, fsync=False)


def _q_policy(spec, epsilon: float = 0.2):
    torch.manual_seed(0)
    builder = PipelineBuilder(TrainConfig(), spec)
    net = build_q_network(builder.network_config(), builder.network_shape()).eval()
    cem = CEMConfig(iterations=2, num_samples=16, num_elites=4)
    config = PolicyConfig(epsilon=epsilon, cem=cem)
    return q_policy_from(net, spec, config, builder.obs_keys(), name="checkpoint:t-000001")


def _robots(spec, n: int, q_policy=None, seed: int = 3) -> list[Robot]:
    config = RobotConfig()
    return [
        Robot(i, config, "state", seed, "t", spec, q_policy and q_policy.clone()) for i in range(n)
    ]


def assert_same_episode(a, b) -> None:
    """Same episode, whenever it ran: ids, draws, actions, observations, outcome."""
    for name in ("episode_id", "robot_id", "task", "seed", "policy", "epsilon", "chained_from"):
        assert getattr(a, name) == getattr(b, name), name
    np.testing.assert_array_equal(a.actions, b.actions)
    np.testing.assert_array_equal(a.success, b.success)
    assert a.observations.keys() == b.observations.keys()
    for key in a.observations:
        np.testing.assert_array_equal(a.observations[key], b.observations[key])


def test_process_groups_split_robots_consecutively():
    assert process_groups(5, 2) == [[0, 1], [2, 3], [4]]
    assert process_groups(3, 8) == [[0, 1, 2]]
    assert process_groups(2, 1) == [[0], [1]]


def test_bad_robots_per_process_is_named():
    with pytest.raises(
        ValueError, match=r"robots_per_process must be an integer in \[1, 256\], got 0"
    ):
        FleetConfig(robots_per_process=0)


def test_scripted_robots_side_by_side_log_what_they_log_alone(tmp_path):
    """Scripted policies draw nothing from the process: lockstep changes no episode."""
    logs = {}
    for k in (1, 3):
        cfg = FleetConfig(
            out=str(tmp_path / f"k{k}"),
            robots=3,
            robots_per_process=k,
            episodes=14,
            seed=2,
            progress=False,
            log=SHARDS,
        )
        assert collect_in_process(cfg, WORKCELL)["episodes"] == 14
        logs[k] = in_robot_order(EpisodeLogReader(cfg.out).episodes())
    assert len(logs[1]) == len(logs[3]) == 14
    assert {e.robot_id for e in logs[3]} == {0, 1, 2}
    assert any(e.chained_from for e in logs[3])  # the workcell's chained place episodes
    for a, b in zip(logs[1], logs[3], strict=True):
        assert_same_episode(a, b)


def test_q_policy_robots_side_by_side_share_one_cem_and_keep_their_own_draws():
    policy = _q_policy(POINTMASS)
    counts = [4, 2, 3]
    together = list(lockstep_episodes(_robots(POINTMASS, 3, policy), counts, seed=11))
    again = list(lockstep_episodes(_robots(POINTMASS, 3, policy), counts, seed=11))
    # every robot ran its own count, and the same seed gives the same episodes
    assert sorted(i for i, _ in together) == [0] * 4 + [1] * 2 + [2] * 3
    for (i, a), (j, b) in zip(together, again, strict=True):
        assert i == j
        assert_same_episode(a, b)
    # each robot's tasks and scenes are its own draws: those it makes when it runs alone
    for i, robot in enumerate(_robots(POINTMASS, 3, policy)):
        alone = list(robot.episodes(counts[i]))
        mine = [ep for j, ep in together if j == i]
        assert [(e.task, e.seed, e.episode_id) for e in mine] == [
            (e.task, e.seed, e.episode_id) for e in alone
        ]
        assert all(e.policy == policy.name and e.epsilon == 0.2 for e in mine)
    # a different CEM seed changes the actions, not the draws
    other = list(lockstep_episodes(_robots(POINTMASS, 3, policy), counts, seed=12))
    first = {i: ep for i, ep in reversed(together)}  # each robot's first episode
    first_other = {i: ep for i, ep in reversed(other)}
    assert all(first[i].seed == first_other[i].seed for i in range(3))
    assert any(not np.array_equal(first[i].actions, first_other[i].actions) for i in range(3))


def test_lockstep_needs_one_count_per_robot():
    with pytest.raises(ValueError, match="one count per robot"):
        list(lockstep_episodes(_robots(POINTMASS, 2), [1], seed=0))
