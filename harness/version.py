"""The harness's own version, as installed: a load worker and its master must agree on it.

Read from the installed distribution's metadata, so a wheel, an editable install and a
checkout's `.venv` all say what `pip` installed; a tree that is not installed says so.
"""

from importlib.metadata import PackageNotFoundError, version

DISTRIBUTION = "clusterproof"

try:
    VERSION = version(DISTRIBUTION)
except PackageNotFoundError:  # imported from a tree nobody installed
    VERSION = "0+not-installed"
