"""``mtopt experiment methods``: the learners, the refusals and the quick mode end to end."""

import json

import pytest

from mtopt.cli import main
from mtopt.experiments.methods import METHODS, MethodsConfig, method_learner
from mtopt.experiments.seeded import adopted_learner


def test_every_method_is_the_adopted_learner_with_one_change():
    base = adopted_learner()
    assert method_learner("mt-opt", base, 50.0) == base
    assert method_learner("pcgrad", base, 50.0).trainer.gradient == "pcgrad"
    cds = method_learner("cds", base, 75.0)
    assert (cds.impersonation.kind, cds.impersonation.percentile) == ("cds", 75.0)
    for arch in ("soft-modular", "care"):
        learner = method_learner(arch, base, 50.0)
        assert learner.trainer.network.architecture == arch
        assert learner.replay == base.replay and learner.impersonation == base.impersonation
    with pytest.raises(ValueError, match="'hypernet'"):
        method_learner("hypernet", base, 50.0)


@pytest.mark.parametrize(
    ("kwargs", "message"),
    [
        ({"methods": ("pcgrad", "care")}, "must include 'mt-opt'"),
        ({"methods": ("mt-opt", "mt-opt")}, "distinct names"),
        ({"methods": ("mt-opt", "moore")}, "'moore'"),
        ({"cds_percentile": 101.0}, "cds_percentile must be in"),
    ],
)
def test_bad_methods_settings_are_refused(kwargs, message):
    with pytest.raises(ValueError, match=message):
        MethodsConfig(**kwargs)


def test_every_method_runs_quick_end_to_end(scripted_log, tmp_path, capsys):
    out = tmp_path / "methods"
    flags = ["--data", str(scripted_log), "--out", str(out), "--no-progress"]
    assert main(["experiment", "methods", "--quick", *flags]) == 0
    table = json.loads((out / "table.json").read_text())
    assert list(table["variants"]) == list(METHODS)
    assert len(table["tasks"]) == 12
    assert all(v["seeds"] == [0, 1] for v in table["variants"].values())
    cost = table["training_cost"]
    assert cost["mt-opt"]["ratio"] == pytest.approx(1.0)
    assert all(c["s_per_step"] > 0 for c in cost.values())
    assert (out / "methods.png").stat().st_size > 10_000
    printed = capsys.readouterr().out
    assert "| soft-modular |" in printed and "Training cost" in printed
