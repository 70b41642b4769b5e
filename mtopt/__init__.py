"""mtopt: an implementation of MT-Opt, continuous multi-task robotic reinforcement learning.

Importing it registers the Gymnasium id ``mtopt/Workcell-v0`` (:mod:`mtopt.gym_registration`).
"""

from mtopt.gym_registration import register_envs

__version__ = "0.1.0"

register_envs()
