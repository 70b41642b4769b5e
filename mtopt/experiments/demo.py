"""``mtopt demo``: the main job on the embedded default (local runtime, simulated workcell).

At this stage the demo bootstraps a dataset with the scripted fleet, exactly as the paper's
collection starts (Sec. 4, App. 9.1), and prints its statistics (paper Fig. 4 / Fig. 11).
"""

from __future__ import annotations

import logging
from dataclasses import dataclass, field, replace
from pathlib import Path

from mtopt.data.stats import dataset_stats, format_stats_table, write_stats_json
from mtopt.system.fleet import FleetConfig, collect

logger = logging.getLogger(__name__)


@dataclass(frozen=True)
class DemoConfig:
    """Run the MT-Opt demo on the simulated workcell."""

    out: str = "runs/demo"
    """Run directory; the episode log goes to OUT/log and statistics to OUT/stats.json."""
    fleet: FleetConfig = field(default_factory=lambda: FleetConfig(robots=2, episodes=1000))
    """The bootstrap collection (its ``out`` is replaced by OUT/log)."""


def run_demo(config: DemoConfig) -> dict:
    """Collect a scripted bootstrap dataset and print its statistics; returns the stats."""
    out = Path(config.out)
    log_dir = out / "log"
    fleet = replace(config.fleet, out=str(log_dir))
    logger.info("collecting %d scripted episodes into %s", fleet.episodes, log_dir)
    summary = collect(fleet)
    logger.info(
        "collection: %d episodes in %.1f s (%.1f episodes/s)",
        summary["episodes"],
        summary["wall_time_s"],
        summary["episodes_per_s"],
    )
    stats = dataset_stats(log_dir)
    print(format_stats_table(stats))  # the demo's product is this table on the console
    write_stats_json(stats, out / "stats.json")
    return stats
