"""Package list for setuptools (metadata lives in pyproject.toml).

First-party plugins live in ``plugins/`` and are imported as ``zoo_plugins.<family>``.
"""

from setuptools import find_packages, setup

plugin_packages = ["zoo_plugins"] + [f"zoo_plugins.{p}" for p in find_packages("plugins")]
setup(packages=find_packages(include=["zoo", "zoo.*"]) + plugin_packages, package_dir={"zoo_plugins": "plugins"})
