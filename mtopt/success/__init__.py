"""Success detectors (paper Sec. 4, App. 8): learned multi-task, multi-view outcome classifiers,
the reward source of log replay and impersonation (``rewards: success_detector``).

Modules: :mod:`~mtopt.success.networks` (image and state detectors),
:mod:`~mtopt.success.examples` (``mtopt sd examples``), :mod:`~mtopt.success.dataset`
(examples, storage, label sharing), :mod:`~mtopt.success.labelling` (relabelling within a
budget), :mod:`~mtopt.success.sampler` (balanced sampling), :mod:`~mtopt.success.augment`,
:mod:`~mtopt.success.training` (``mtopt sd train``), :mod:`~mtopt.success.metrics` (paper
Table 3), :mod:`~mtopt.success.evaluate` (``mtopt sd eval``), :mod:`~mtopt.success.detector`
(inference and the log-replay labeller). See ``docs/success-detectors.md``.
"""
