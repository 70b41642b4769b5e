"""Process-level runtime settings shared by the experiment commands."""

from __future__ import annotations

import logging

logger = logging.getLogger(__name__)


def set_torch_threads(threads: int) -> None:
    """Use ``threads`` torch intra-op threads in this process (0 keeps torch's default).

    On a small shared machine one thread avoids OpenMP oversubscription: measured on the
    2-core reference box under load, a training step of the state MLP took 10x longer with 2
    threads than with 1.
    """
    if threads < 0:
        raise ValueError(f"torch threads must be >= 0, got {threads!r}")
    if threads:
        import torch

        torch.set_num_threads(threads)
        logger.info("torch intra-op threads: %d", threads)
