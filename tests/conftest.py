"""Shared pytest set-up: CPU rendering through OSMesa unless the user chose a backend."""

import os

os.environ.setdefault("MUJOCO_GL", "osmesa")
os.environ.setdefault("PYOPENGL_PLATFORM", os.environ["MUJOCO_GL"])
