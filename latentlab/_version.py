"""``__version__``: the installed distribution's version. Any module may import this one; it imports nothing."""

from importlib.metadata import PackageNotFoundError, version

try:
    __version__ = version("latentlab")
except PackageNotFoundError:  # running from a source tree that was not installed
    __version__ = "0.0.0+unknown"
