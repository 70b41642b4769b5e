"""Render-backend selection and offscreen cameras for the workcell.

MuJoCo's Python bindings choose the OpenGL backend from the ``MUJOCO_GL`` environment variable
when ``mujoco`` is imported, and PyOpenGL fixes its platform (``PYOPENGL_PLATFORM``) when it is
first imported. A process can therefore use only one backend. :func:`ensure_backend` sets both
variables and, if ``mujoco`` was imported with another (unused) backend, re-initialises MuJoCo's
GL-context module before the first context is created; once a context exists, asking for a
different backend raises ``RuntimeError``.

Nothing here runs unless an image is requested: state-only environments never create a
renderer or a GL context.
"""

from __future__ import annotations

import importlib
import logging
import os
import sys
import weakref

import mujoco
import numpy as np

from mtopt.envs import scene
from mtopt.errors import MtoptError

logger = logging.getLogger(__name__)

BACKENDS: tuple[str, ...] = ("osmesa", "egl", "glfw")
"""Supported render backends: software OSMesa (CPU), EGL (headless GPU), GLFW (windowed)."""
DEFAULT_BACKEND = "osmesa"
"""Backend used when neither the config nor ``MUJOCO_GL`` chooses one."""

_PYOPENGL_PLATFORM = {"osmesa": "osmesa", "egl": "egl", "glfw": None}
_PYOPENGL_CLASS = {"osmesa": "osmesa", "egl": "egl", "glfw": "glx"}
_active_backend: str | None = None  # the backend whose GL context exists in this process


class RenderBackendError(MtoptError, RuntimeError):
    """No OpenGL context can be made with the chosen backend (e.g. OSMesa is not installed);
    the message says how to enable one."""


def backend_error(backend: str, err: BaseException) -> RenderBackendError:
    """The error for a failed ``backend``: the cause, then how to enable CPU or GPU rendering."""
    return RenderBackendError(
        f"cannot render images: no OpenGL context with backend {backend!r} "
        f"({type(err).__name__}: {err}). For CPU rendering install OSMesa "
        "(apt-get install -y libosmesa6) and start with MUJOCO_GL=osmesa "
        "PYOPENGL_PLATFORM=osmesa; on a GPU machine use MUJOCO_GL=egl PYOPENGL_PLATFORM=egl "
        "(or the workcell's render_backend, --env.workcell.render-backend)"
    )


def resolve_backend(name: str | None) -> str:
    """The backend to use: ``name`` if given, else ``$MUJOCO_GL`` if set, else OSMesa."""
    if name is None:
        env = os.environ.get("MUJOCO_GL", "").strip().lower()
        name = env or DEFAULT_BACKEND
        source = "environment variable MUJOCO_GL"
    else:
        source = "render_backend"
    if name not in BACKENDS:
        raise ValueError(f"{source} must be one of {BACKENDS}, got {name!r}")
    return name


def _mujoco_backend() -> str:
    """The backend MuJoCo's GL-context module was initialised with."""
    from mujoco import gl_context

    chosen = str(getattr(gl_context, "_MUJOCO_GL", "")).strip().lower()
    return chosen if chosen in BACKENDS else "glfw"


def ensure_backend(name: str) -> None:
    """Make ``name`` the render backend of this process (see the module docstring)."""
    global _active_backend
    if name not in BACKENDS:
        raise ValueError(f"render backend must be one of {BACKENDS}, got {name!r}")
    if _active_backend is not None:
        if _active_backend != name:
            raise RuntimeError(
                f"render backend {_active_backend!r} is already in use in this process; cannot "
                f"switch to {name!r}. Use one backend per process (set MUJOCO_GL={_active_backend}"
                " or start a new process)."
            )
        return
    platform = _PYOPENGL_PLATFORM[name]
    gl_mod = sys.modules.get("OpenGL.platform")
    if gl_mod is not None and getattr(gl_mod, "PLATFORM", None) is not None:
        fixed = type(gl_mod.PLATFORM).__name__.lower()
        if _PYOPENGL_CLASS[name] not in fixed:
            raise RuntimeError(
                f"PyOpenGL was already initialised with platform {fixed!r} in this process, "
                f"so render backend {name!r} cannot be used; set MUJOCO_GL={name} and "
                f"PYOPENGL_PLATFORM={platform or ''} before importing mujoco/OpenGL."
            )
    os.environ["MUJOCO_GL"] = name
    if platform is not None:
        os.environ["PYOPENGL_PLATFORM"] = platform
    if _mujoco_backend() != name:
        from mujoco import gl_context

        logger.info("re-initialising MuJoCo's GL context module for backend %r", name)
        try:
            importlib.reload(gl_context)
        except Exception as err:  # e.g. PyOpenGL cannot load libOSMesa
            raise backend_error(name, err) from err
    _active_backend = name


class CameraRig:
    """Offscreen renderers for the workcell cameras (one per image size, created lazily)."""

    def __init__(self, model: mujoco.MjModel, backend: str) -> None:
        self._model = model
        self._backend = backend
        self._renderers: dict[int, mujoco.Renderer] = {}
        # close GL resources before interpreter shutdown tears down PyOpenGL
        self._finalizer = weakref.finalize(self, _close_all, self._renderers)
        self._option = mujoco.MjvOption()
        for group in range(len(self._option.geomgroup)):
            self._option.geomgroup[group] = 0
        for group in (0, 1, scene.VISIBLE_OBJECT_GROUP):
            self._option.geomgroup[group] = 1

    def _renderer(self, size: int) -> mujoco.Renderer:
        renderer = self._renderers.get(size)
        if renderer is None:
            ensure_backend(self._backend)
            try:
                renderer = mujoco.Renderer(self._model, size, size)
            except Exception as err:  # missing libraries surface here
                raise backend_error(self._backend, err) from err
            self._renderers[size] = renderer
        return renderer

    def render(self, data: mujoco.MjData, camera: str, size: int) -> np.ndarray:
        """RGB image ``(size, size, 3)`` uint8 from the named camera."""
        renderer = self._renderer(size)
        renderer.update_scene(data, camera=camera, scene_option=self._option)
        return renderer.render()

    def close(self) -> None:
        """Release all GL resources."""
        _close_all(self._renderers)


def _close_all(renderers: dict[int, mujoco.Renderer]) -> None:
    for renderer in renderers.values():
        renderer.close()
    renderers.clear()
