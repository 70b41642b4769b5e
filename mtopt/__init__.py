"""mtopt: an implementation of MT-Opt, continuous multi-task robotic reinforcement learning."""

__version__ = "0.1.0"
