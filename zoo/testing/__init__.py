"""Helpers for testing zoo and zoo plugins.

* :mod:`zoo.testing.weights`: deterministic per-key random weights and key/shape manifests;
* :mod:`zoo.testing.hub`: a local stand-in for the Hugging Face Hub (``HF_ENDPOINT``);
* :mod:`zoo.testing.plugins`: temporary plugin / card registration;
* :mod:`zoo.testing.fixtures`: pytest fixtures (``pytest_plugins = ["zoo.testing.fixtures"]``).

Importing this package does not import torch.
"""
