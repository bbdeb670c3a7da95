"""Autoscaling for ModelDeployments on LLM-serving signals (queue depth, KV cache, GPU guard).

``signals.collect`` reads (I/O), ``policy.decide`` decides (pure), and the controller applies
the resulting :class:`~tierwise.autoscaler.model.Decision`; see ``docs/autoscaling.md``.
"""
