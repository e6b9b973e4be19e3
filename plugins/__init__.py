"""zoo's first-party plugins, one model family per subpackage (imported as ``zoo_plugins.<family>``).

Each registers through the same ``zoo.plugins`` entry-point group as third-party packages.
"""
