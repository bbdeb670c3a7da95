"""Tierwise: a Kubernetes operator for multi-model LLM serving.

The package is layered (see ``pyproject.toml``'s import-linter contracts): ``api`` holds
the typed custom resources every other layer reads, ``engines`` and ``manifests`` are pure,
``controller`` (kopf) and ``router`` (data plane) sit on top and never import each other.
"""

__version__ = "0.1.0"
