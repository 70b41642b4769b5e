"""Fixtures shared by the experiments' tests."""

import pytest

from mtopt.envs import make_spec
from mtopt.system.fleet import FleetConfig, collect


@pytest.fixture(scope="session")
def scripted_log(tmp_path_factory):
    """A small scripted log of the 12 workcell tasks (48 episodes, no cloth), read only."""
    log = tmp_path_factory.mktemp("scripted") / "log"
    cfg = FleetConfig(out=str(log), robots=2, robots_per_process=2, episodes=48, seed=0)
    collect(cfg, make_spec("workcell"))
    return log
