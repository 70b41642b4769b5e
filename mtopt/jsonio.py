"""Writing results as strict JSON: NaN becomes ``null`` (plain ``json`` would write ``NaN``)."""

from __future__ import annotations

import json
import math
import os
from pathlib import Path
from typing import Any


def json_ready(value: Any) -> Any:
    """A copy of ``value`` with NaN floats replaced by ``None`` and tuples made lists."""
    if isinstance(value, dict):
        return {str(k): json_ready(v) for k, v in value.items()}
    if isinstance(value, list | tuple):
        return [json_ready(v) for v in value]
    if isinstance(value, float) and math.isnan(value):
        return None
    return value


def write_json(value: Any, path: str | Path) -> None:
    """Write ``value`` as indented strict JSON, atomically (a crash leaves the old file)."""
    path = Path(path)
    if path.is_dir():
        raise IsADirectoryError(f"JSON output {str(path)!r} is a directory; give a file path")
    tmp = path.with_name(f".{path.name}.tmp-{os.getpid()}")
    try:
        tmp.write_text(json.dumps(json_ready(value), indent=2, default=str) + "\n")
        os.replace(tmp, path)
    except BaseException:  # leave no temporary file behind
        tmp.unlink(missing_ok=True)
        raise
