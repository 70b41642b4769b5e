"""The two runtimes of ``mtopt run``: components in this process, or Ray actors.

Both expose the same small interface to the run's driver loop: ``spawn`` a worker, ``call`` a
method (returns a future), ``wait`` for futures, ``get`` a result. In the local backend a call
runs at once and its future is already done; in the Ray backend it is an actor task and the
future an object reference. Nothing else in the system knows which backend it runs on.
"""

from __future__ import annotations

import logging
import os
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from mtopt.system.run_config import RayConfig

logger = logging.getLogger(__name__)

WORKER_KINDS = ("robot", "log_replay", "updater", "trainer")


class WorkerDiedError(RuntimeError):
    """The worker running a call died (its actor will be restarted when allowed)."""


@dataclass
class LocalFuture:
    """The already-computed result (or error) of a local call."""

    value: Any = None
    error: BaseException | None = None


class LocalBackend:
    """Every worker is a plain object in this process; calls run synchronously."""

    name = "local"

    def spawn(self, cls: type, kind: str, *args: Any) -> Any:
        return cls(*args)

    def call(self, handle: Any, method: str, *args: Any) -> LocalFuture:
        for a in args:
            if isinstance(a, LocalFuture) and a.error is not None:
                return LocalFuture(error=a.error)
        args = tuple(a.value if isinstance(a, LocalFuture) else a for a in args)
        try:
            return LocalFuture(getattr(handle, method)(*args))
        except Exception as exc:
            return LocalFuture(error=exc)

    def put(self, value: Any) -> Any:
        return value

    def ref(self, future: LocalFuture) -> Any:
        """What a worker is handed for the result of ``future`` (here: the value)."""
        return self.get(future)

    def wait(self, futures: Sequence[Any], timeout: float) -> list[Any]:
        return list(futures)

    def get(self, future: LocalFuture) -> Any:
        if future.error is not None:
            raise future.error
        return future.value

    def gpus(self) -> float:
        return 0.0

    def check_fits(self, actors: dict[str, int]) -> None:
        pass

    def shutdown(self) -> None:
        pass


def source_root() -> Path:
    """The directory holding this mtopt package (what workers put on their PYTHONPATH)."""
    import mtopt

    return Path(mtopt.__file__).resolve().parent.parent


def runtime_env(config: RayConfig) -> dict[str, Any]:
    """The Ray runtime environment that lets workers import this mtopt."""
    if config.code == "installed":
        return {}
    root = str(source_root())
    if config.code == "working_dir":
        excludes = [".git", "runs", "**/__pycache__", "*.parquet", "*.pt"]
        return {"working_dir": root, "excludes": excludes}
    path = os.pathsep.join(p for p in (root, os.environ.get("PYTHONPATH", "")) if p)
    return {"env_vars": {"PYTHONPATH": path}}


def init_ray(config: RayConfig) -> None:
    """Start a private Ray (or join ``config.address``) with the workers' code on their path."""
    import ray

    kwargs: dict[str, Any] = {
        "runtime_env": runtime_env(config),
        "logging_level": logging.WARNING,
        "log_to_driver": True,
    }
    if config.address is None:
        kwargs.update(
            num_cpus=config.num_cpus,
            object_store_memory=config.object_store_mb * 1024 * 1024,
            include_dashboard=config.include_dashboard,
        )
    else:
        kwargs["address"] = config.address
    ray.init(**kwargs)


class RayBackend:
    """Every worker is a Ray actor; robots and updaters are restarted when they die."""

    name = "ray"

    def __init__(self, config: RayConfig) -> None:
        import ray

        self.ray = ray
        self.config = config
        self.owner = False
        if not ray.is_initialized():
            init_ray(config)
            self.owner = True
        logger.info("ray: %s", ray.cluster_resources())

    def gpus(self) -> float:
        return float(self.ray.cluster_resources().get("GPU", 0.0))

    def check_fits(self, actors: dict[str, int]) -> None:
        """Refuse actor counts whose CPU reservations exceed a private Ray's CPUs."""
        cfg = self.config
        per = {
            "robot": cfg.robot_cpus,
            "log_replay": cfg.log_replay_cpus,
            "updater": cfg.updater_cpus,
            "trainer": cfg.trainer_cpus,
        }
        need = sum(per[k] * n for k, n in actors.items())
        have = float(self.ray.cluster_resources().get("CPU", 0.0))
        if self.owner and need > have + 1e-9:
            raise ValueError(
                f"the actors reserve {need:g} CPUs ({actors} with ray.robot_cpus="
                f"{cfg.robot_cpus:g}, ray.log_replay_cpus={cfg.log_replay_cpus:g}, "
                f"ray.updater_cpus={cfg.updater_cpus:g}, ray.trainer_cpus={cfg.trainer_cpus:g}) "
                f"but Ray has {have:g}; lower the reservations or raise ray.num_cpus"
            )

    def spawn(self, cls: type, kind: str, *args: Any) -> Any:
        cfg = self.config
        options: dict[str, Any] = {"max_task_retries": 0}
        if kind == "robot":
            options.update(num_cpus=cfg.robot_cpus, max_restarts=cfg.max_restarts)
        elif kind == "updater":
            options.update(num_cpus=cfg.updater_cpus, max_restarts=cfg.max_restarts)
        elif kind == "log_replay":
            options.update(num_cpus=cfg.log_replay_cpus, max_restarts=0)
        elif kind == "trainer":
            gpus = cfg.trainer_gpus if cfg.trainer_gpus is not None else min(self.gpus(), 1.0)
            options.update(num_cpus=cfg.trainer_cpus, num_gpus=gpus, max_restarts=0)
        else:
            raise ValueError(f"worker kind must be one of {WORKER_KINDS}, got {kind!r}")
        if not self.owner and cfg.code != "installed":
            options["runtime_env"] = runtime_env(cfg)
        return self.ray.remote(**options)(cls).remote(*args)

    def call(self, handle: Any, method: str, *args: Any) -> Any:
        return getattr(handle, method).remote(*args)

    def put(self, value: Any) -> Any:
        return self.ray.put(value)

    def ref(self, future: Any) -> Any:
        """What a worker is handed for the result of ``future`` (the object reference)."""
        return future

    def wait(self, futures: Sequence[Any], timeout: float) -> list[Any]:
        if not futures:
            return []
        ready, _ = self.ray.wait(list(futures), num_returns=1, timeout=timeout)
        if ready:  # collect everything else that is done too, without blocking
            more, _ = self.ray.wait(list(futures), num_returns=len(futures), timeout=0)
            ready = more
        return ready

    def get(self, future: Any) -> Any:
        from ray.exceptions import ActorDiedError, ActorUnavailableError, RayActorError

        try:
            return self.ray.get(future)
        except (RayActorError, ActorDiedError, ActorUnavailableError) as exc:
            raise WorkerDiedError(str(exc).splitlines()[0] if str(exc) else repr(exc)) from exc

    def shutdown(self) -> None:
        if self.owner:
            self.ray.shutdown()


def make_backend(name: str, ray_config: RayConfig) -> LocalBackend | RayBackend:
    """The backend called ``name`` (``local`` or ``ray``)."""
    if name == "local":
        return LocalBackend()
    if name == "ray":
        return RayBackend(ray_config)
    raise ValueError(f"backend must be 'local' or 'ray', got {name!r}")
