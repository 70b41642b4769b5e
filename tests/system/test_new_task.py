"""Adding a task to a run (``mtopt task add``, paper Sec. 5.6), end to end on the point mass:
the slot, the success detector of the grown task set, the relabelled log, a checkpoint that
grows its task set, collection and evaluation of the grown set, and the refusals."""

from __future__ import annotations

import json

import numpy as np
import torch

from mtopt.added_tasks import AddedTask, read_task_file, write_task_file
from mtopt.cli import main
from mtopt.data.log import EpisodeLogReader
from mtopt.envs import EnvConfig
from mtopt.learning.checkpoint import list_checkpoints, load_checkpoint
from mtopt.policies import PolicyConfig
from mtopt.policies.q_policy import load_q_policy
from mtopt.success.dataset import SDExamples
from mtopt.success.detector import SuccessDetector

CENTRE = "stay-centre"
"""The new task: end the episode within 0.3 of the square's centre (no goal marks it)."""
SMALL = ["--trainer.network.mlp-width", "32", "--trainer.device", "cpu", "--batch-size", "32",
         "--cem.num-samples", "16", "--cem.num-elites", "4", "--no-progress"]  # fmt: skip
SD_SMALL = ["--network.kind", "state", "--network.width", "16", "--batch-size", "32",
            "--no-progress"]  # fmt: skip


def centre_examples(n: int, rng: np.random.Generator) -> SDExamples:
    """Point-mass final states labelled for the new task only: half end near the centre."""
    goals = rng.uniform(-0.9, 0.9, size=(n, 4, 2))
    pos = rng.uniform(-1.0, 1.0, size=(n, 2))
    near = rng.random(n) < 0.5
    pos[near] = rng.uniform(-0.2, 0.2, size=(near.sum(), 2))
    labels = (np.linalg.norm(pos, axis=1) < 0.3).astype(np.int8)[:, None]
    state = np.concatenate([pos, goals.reshape(n, -1)], axis=1).astype(np.float32)
    return SDExamples((CENTRE,), labels, np.zeros(n, np.int64), np.full(n, -1, np.int64), state)


def test_a_task_added_by_examples_grows_the_run(tmp_path, capsys):
    log, sd0, run = tmp_path / "log", tmp_path / "sd0", tmp_path / "train"
    assert main(["collect", "--env", "pointmass", "--out", str(log), "--episodes", "60",
                 "--robots", "1", "--no-progress"]) == 0  # fmt: skip
    assert main(["sd", "train", "--env", "pointmass", "--log", str(log), "--out", str(sd0),
                 "--budget", "60", "--steps", "20", *SD_SMALL]) == 0  # fmt: skip
    steps = ["--steps", "20", "--checkpoint-every", "20"]
    assert main(["train", "--env", "pointmass", "--data", str(log), "--out", str(run),
                 "--rewards", "oracle", *steps, *SMALL]) == 0  # fmt: skip
    ckpt0 = list_checkpoints(run / "checkpoints")[-1]
    centre_examples(200, np.random.default_rng(0)).save(tmp_path / "centre")
    capsys.readouterr()

    tasks_file = tmp_path / "tasks.json"
    add = ["task", "add", CENTRE, "--skill", "reach", "--examples", str(tmp_path / "centre"),
           "--tasks-file", str(tasks_file), "--env", "pointmass",
           "--success-detector.init", str(sd0), "--success-detector.log", str(log),
           "--success-detector.budget", "60", "--success-detector.steps", "30",
           "--success-detector.batch-size", "32", "--success-detector.out", str(tmp_path / "sd1"),
           "--success-detector.no-progress"]  # fmt: skip
    assert main(add) == 0
    report = json.loads(capsys.readouterr().out)
    assert report["slot"] == 4 and report["tasks"][-1] == CENTRE
    assert report["example_successes"] > 50
    assert report["relabel"]["episodes"] == 60  # every logged episode labelled for the new task
    assert sum(r["episodes"] for r in report["relabel"]["by_task"].values()) == 60
    assert read_task_file(tasks_file) == (
        AddedTask(CENTRE, "reach", examples=(str(tmp_path / "centre"),)),
    )
    grown = EnvConfig(name="pointmass", tasks=str(tasks_file)).spec()
    detector = SuccessDetector.load(tmp_path / "sd1", grown.task_set)  # fine-tuned, grown
    assert detector.task_names == grown.task_set.names
    assert json.loads((tmp_path / "sd1" / "new-task.json").read_text())["slot"] == 4

    # the old checkpoint loads into the grown task set with every weight as it was
    payload = load_checkpoint(ckpt0)
    policy = load_q_policy(str(ckpt0), grown, PolicyConfig(epsilon=0.0))
    for name, value in policy.network.state_dict().items():
        assert torch.equal(value, payload["trainer"]["online"][name]), name

    # a learner fine-tunes it for all five tasks with the grown detector's rewards
    run2 = tmp_path / "train2"
    grown_env = ["--env", "pointmass", "--env.tasks", str(tasks_file)]
    sd1 = ["--success-detector", str(tmp_path / "sd1")]
    assert main(["train", *grown_env, "--data", str(log), "--out", str(run2), "--init", str(ckpt0),
                 *sd1, *steps, *SMALL]) == 0  # fmt: skip
    ckpt1 = list_checkpoints(run2 / "checkpoints")[-1]
    assert load_checkpoint(ckpt1)["trained_tasks"][-1] == CENTRE

    # robots collect the new task: it runs as its skill's first task, recorded as itself
    log2 = tmp_path / "log2"
    assert main(["collect", *grown_env, "--out", str(log2), "--episodes", "4", "--robots", "1",
                 "--tasks", CENTRE, "--checkpoint", str(ckpt1),
                 "--no-progress"]) == 0  # fmt: skip
    episodes = list(EpisodeLogReader(log2).episodes())
    assert {ep.task for ep in episodes} == {CENTRE}
    assert all(CENTRE not in ep.success_tasks for ep in episodes)  # no ground truth for it

    # the evaluation scores the tasks that have ground truth, and names the one that has none
    capsys.readouterr()
    evaluate = ["eval", *grown_env, "--checkpoint", str(ckpt1), "--episodes-per-task", "1",
                "--no-progress"]  # fmt: skip
    assert main([*evaluate, "--json", str(tmp_path / "eval.json")]) == 0
    scored = json.loads((tmp_path / "eval.json").read_text())["tasks"]
    assert sorted(scored) == ["reach-0", "reach-1", "reach-2", "reach-3"]
    assert main([*evaluate, "--tasks", CENTRE]) == 2
    assert f"task(s) ['{CENTRE}'] have no ground-truth success" in capsys.readouterr().err

    # a run whose task set put another task in that slot refuses the checkpoint, naming it
    other = write_task_file(tmp_path / "other.json", "pointmass", [AddedTask("go-corner", "reach")])
    assert main(["eval", "--env", "pointmass", "--env.tasks", str(other), "--checkpoint",
                 str(ckpt1), "--episodes-per-task", "1", "--no-progress"]) == 2  # fmt: skip
    err = capsys.readouterr().err
    assert f"slot 4: '{CENTRE}' vs 'go-corner'" in err
    # and oracle rewards cannot label a task without ground truth
    assert main(["train", *grown_env, "--data", str(log), "--out", str(tmp_path / "t3"),
                 "--rewards", "oracle", *steps, *SMALL]) == 2  # fmt: skip
    assert f"rewards: oracle needs ground-truth success, which task(s) ['{CENTRE}'] lack" in (
        capsys.readouterr().err
    )


def test_adding_refuses_examples_without_a_success_and_keeps_the_task_file(tmp_path, capsys):
    ex = centre_examples(20, np.random.default_rng(1))
    ex.labels[:] = 0
    ex.save(tmp_path / "failures")
    tasks_file = write_task_file(tmp_path / "tasks.json", "pointmass", [])
    before = tasks_file.read_text()
    add = ["task", "add", CENTRE, "--skill", "reach", "--examples", str(tmp_path / "failures"),
           "--tasks-file", str(tasks_file), "--env", "pointmass"]  # fmt: skip
    assert main(add) == 2
    assert "the examples of 'stay-centre' alone label no other task" in capsys.readouterr().err
    add += ["--success-detector.log", str(tmp_path / "no-log")]
    assert main(add) == 2
    assert f"hold no success of task '{CENTRE}'" in capsys.readouterr().err
    assert tasks_file.read_text() == before
    assert main([*add[:-6], "--skill", "fly", *add[-6:]]) == 2
    assert "skill 'fly' is not one of the environment's skills ['reach']" in capsys.readouterr().err
    assert read_task_file(tasks_file) == ()
    workcell_file = write_task_file(tmp_path / "wc.json", "workcell", [])
    other = [*add[:-6], "--tasks-file", str(workcell_file), "--env", "pointmass", *add[-2:]]
    assert main(other) == 2
    assert "adds tasks to env 'workcell', not to 'pointmass'" in capsys.readouterr().err
