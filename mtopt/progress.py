"""Progress bars for long loops (collection, training, evaluation).

A bar is drawn only when asked for *and* stderr is a terminal, so logs of CI and batch jobs are
not flooded with carriage-return updates; the loops also log their results through ``logging``.
"""

from __future__ import annotations

from typing import Any

from tqdm.auto import tqdm


def progress_bar(total: int, desc: str, unit: str, enabled: bool = True, **kwargs: Any) -> tqdm:
    """A tqdm bar; ``enabled=False`` hides it, otherwise it shows only on a terminal."""
    return tqdm(
        total=total,
        desc=desc,
        unit=unit,
        disable=None if enabled else True,  # None: tqdm hides itself when not a TTY
        mininterval=0.5,
        smoothing=0.1,
        **kwargs,
    )
