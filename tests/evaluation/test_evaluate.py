"""``mtopt eval`` configuration reaches the evaluated policy (mtopt.evaluation.evaluate)."""

import pytest

from mtopt.envs import make_spec
from mtopt.evaluation.evaluate import EvalConfig, run_eval
from mtopt.learning.cem import CEMConfig
from mtopt.learning.checkpoint import save_checkpoint
from mtopt.policies import PolicyConfig, q_policy


class _LoadedError(Exception):
    pass


def test_the_eval_policy_config_reaches_the_policy(monkeypatch, tmp_path):
    seen = {}
    ckpt = str(save_checkpoint(tmp_path, 1, {"trainer": {}}))  # a Q-learner's, not a BC one

    def fake_load(checkpoint, spec, policy=None):
        seen.update(checkpoint=checkpoint, env=spec.name, policy=policy)
        raise _LoadedError

    monkeypatch.setattr(q_policy, "load_q_policy", fake_load)
    finer = PolicyConfig(epsilon=0.1, cem=CEMConfig(iterations=3, num_samples=128, num_elites=12))
    with pytest.raises(_LoadedError):
        run_eval(EvalConfig(checkpoint=ckpt, policy=finer), make_spec("pointmass"))
    assert seen == {"checkpoint": ckpt, "env": "pointmass", "policy": finer}


def test_eval_defaults_to_a_greedy_policy_with_qt_opt_cem():
    policy = EvalConfig(checkpoint="c.pt").policy
    cem = policy.cem
    assert policy.epsilon == 0.0
    assert (cem.iterations, cem.num_samples, cem.num_elites) == (2, 64, 6)


def test_eval_refuses_a_task_of_another_env():
    with pytest.raises(ValueError, match="unknown task name"):
        run_eval(EvalConfig(scripted=True, tasks=("lift-any",)), make_spec("pointmass"))


@pytest.mark.parametrize(
    "kwargs",
    [{}, {"scripted": True, "expert": True}, {"checkpoint": "c.pt", "expert": True}],
)
def test_eval_needs_exactly_one_policy_source(kwargs):
    with pytest.raises(ValueError, match="exactly one of --checkpoint PATH, --scripted or"):
        EvalConfig(**kwargs)


def test_eval_of_the_expert_policies_runs_the_workcells_aimed_controllers():
    one = dict(episodes_per_task=2, progress=False, tasks=("lift-any", "place-any"))
    result = run_eval(EvalConfig(expert=True, **one), make_spec("workcell"))
    assert result["policy"] == "expert" and list(result["tasks"]) == ["lift-any", "place-any"]
    # the aimed controllers (session 20: 0.98 on both) succeed where scripted ones rarely do
    assert sum(result["tasks"][t]["successes"] for t in one["tasks"]) >= 3


def test_eval_of_experts_is_refused_where_the_environment_has_none():
    with pytest.raises(ValueError, match="environment 'pointmass' has no expert policy"):
        run_eval(EvalConfig(expert=True, progress=False), make_spec("pointmass"))


def test_a_task_the_checkpoint_was_not_trained_on_is_refused(tmp_path):
    """A checkpoint trained on some tasks is refused for others, naming its tasks."""
    from mtopt.data.impersonation import ImpersonationConfig
    from mtopt.data.log import EpisodeLogConfig, EpisodeLogWriter
    from mtopt.learning.networks import QNetworkConfig
    from mtopt.learning.trainer import TrainerConfig
    from mtopt.system.training import train
    from mtopt.system.training_config import TrainConfig

    spec = make_spec("pointmass")
    env = spec.make_env()
    with EpisodeLogWriter(tmp_path / "log", 0, EpisodeLogConfig(fsync=False)) as writer:
        for k in range(12):
            writer.append(_rollout(spec, env, "reach-0", k))
    cfg = TrainConfig(
        data=str(tmp_path / "log"),
        out=str(tmp_path / "run"),
        steps=2,
        batch_size=8,
        tasks=("reach-0",),
        rewards="oracle",
        impersonation=ImpersonationConfig(kind="orig"),
        trainer=TrainerConfig(network=QNetworkConfig(kind="mlp", mlp_width=8), device="cpu"),
        checkpoint_every=2,
        progress=False,
    )
    ckpt = train(cfg, spec)["checkpoint"]
    one = dict(episodes_per_task=1, progress=False, policy=PolicyConfig(device="cpu"))
    refused = r"not trained on \['reach-1'\]; it was trained on \['reach-0'\]"
    with pytest.raises(ValueError, match=refused):
        run_eval(EvalConfig(checkpoint=ckpt, tasks=("reach-1",), **one), spec)
    result = run_eval(
        EvalConfig(checkpoint=ckpt, tasks=("reach-1",), allow_untrained_tasks=True, **one), spec
    )
    assert list(result["tasks"]) == ["reach-1"]
    # beside the scripted policies: the same scenes, both tables, the comparison, one plot
    both = run_eval(
        EvalConfig(checkpoint=ckpt, beside_scripted=True, plot=str(tmp_path / "b.png"), **one),
        spec,
    )
    assert list(both["scripted"]["tasks"]) == list(both["tasks"]) == ["reach-0"]
    assert both["comparison"].startswith(f"{both['policy']} against scripted on the same scenes")
    assert (tmp_path / "b.png").stat().st_size > 1000


def _rollout(spec, env, task, seed):
    """One scripted episode of ``task`` in the point mass, as the fleet records it."""
    import numpy as np

    from mtopt.data.episode import Episode

    policy, name = spec.scripted_policy(task)
    obs, _ = env.reset(seed=seed, options=spec.reset_options(task, "collect"))
    policy.reset(np.random.default_rng(seed), task=task)
    states, actions, done = [obs["state"]], [], False
    while not done:
        action = policy.act(obs)
        obs, _, terminated, truncated, info = env.step(action)
        states.append(obs["state"])
        actions.append(action)
        done = terminated or truncated
    return Episode(
        episode_id=f"000-{seed:012x}",
        robot_id=0,
        task=task,
        policy=name,
        epsilon=0.0,
        seed=seed,
        start_time=0.0,
        end_time=1.0,
        observations={"state": np.stack(states)},
        actions=np.stack(actions).astype(np.float32),
        success=np.asarray(info["success"], dtype=bool),
        success_tasks=tuple(info["task_names"]),
    )


def test_beside_scripted_needs_a_checkpoint():
    with pytest.raises(ValueError, match="--beside-scripted compares a --checkpoint"):
        EvalConfig(scripted=True, beside_scripted=True)
