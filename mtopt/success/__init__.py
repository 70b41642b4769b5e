"""Success detectors (paper Sec. 4, App. 8): learned multi-task, multi-view outcome classifiers,
the reward source of log replay and impersonation (``rewards: success_detector``).

The package knows an environment only through its :class:`~mtopt.spec.EnvSpec` (task set,
state structure) and never imports one; outcome examples of arranged scenes (``mtopt sd
examples``) are made by the environment (the workcell's generator lives with the workcell).

Modules: :mod:`~mtopt.success.networks` (image and state detectors),
:mod:`~mtopt.success.dataset` (examples, storage, label sharing),
:mod:`~mtopt.success.labelling` (relabelling within a budget), :mod:`~mtopt.success.sampler`
(balanced sampling), :mod:`~mtopt.success.augment`, :mod:`~mtopt.success.gripper_crop`,
:mod:`~mtopt.success.training` (``mtopt sd train``), :mod:`~mtopt.success.metrics` (paper
Table 3), :mod:`~mtopt.success.evaluate` (``mtopt sd eval``),
:mod:`~mtopt.success.calibration` (``mtopt sd calibrate``), :mod:`~mtopt.success.detector`
(inference and the log-replay labeller). See ``docs/success-detectors.md``.
"""
