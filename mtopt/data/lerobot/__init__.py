"""LeRobot dataset v3.0 export and import of an episode log (``mtopt data export / import``).

The dataset follows the LeRobot v3.0 layout (``docs/lerobot.md``), written and read with pyarrow
(and PyAV for the videos), so neither direction needs the ``lerobot-dataset`` package: the
``lerobot`` extra brings it, and PyAV, for the test that its ``LeRobotDataset`` reads an export.

The modules, by role:

- :mod:`~mtopt.data.lerobot.layout`: the directory layout, constants, the feature schema and
  the tables both directions share;
- :mod:`~mtopt.data.lerobot.stats`: the per-feature statistics (``meta/stats.json``);
- :mod:`~mtopt.data.lerobot.video`: camera views as MP4 (PyAV encoding and decoding);
- :mod:`~mtopt.data.lerobot.export`: episode log -> dataset (:func:`export_lerobot`);
- :mod:`~mtopt.data.lerobot.importer`: dataset -> episode log (:func:`import_lerobot`).
"""

from mtopt.data.lerobot.export import LeRobotExportConfig, export_lerobot
from mtopt.data.lerobot.export import _DatasetWriter as _DatasetWriter
from mtopt.data.lerobot.importer import LeRobotImportConfig, import_lerobot
from mtopt.data.lerobot.layout import (
    DEFAULT_FPS,
    IMAGE_KEY,
    INDEX_FEATURES,
    INFO,
    MTOPT_PATH,
    VIDEO_PATH,
    LeRobotFormatError,
    control_fps,
)
from mtopt.data.lerobot.layout import _write_tasks as _write_tasks

__all__ = [
    "DEFAULT_FPS",
    "IMAGE_KEY",
    "INDEX_FEATURES",
    "INFO",
    "MTOPT_PATH",
    "VIDEO_PATH",
    "LeRobotExportConfig",
    "LeRobotFormatError",
    "LeRobotImportConfig",
    "control_fps",
    "export_lerobot",
    "import_lerobot",
]
