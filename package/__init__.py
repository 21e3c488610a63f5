"""backprop: symbolic backpropagation in the lecture notes' notation.

The stages are subpackages, one folder each in the source tree (mapped in pyproject.toml):
:mod:`backprop.derive` (spec → gradients), :mod:`backprop.verify` (check a hand derivation),
:mod:`backprop.codegen` and :mod:`backprop.generated` (NumPy trainers), :mod:`backprop.train`
and :mod:`backprop.cli` (the ``backprop`` command, also ``python -m backprop``).

    >>> import backprop
    >>> backprop.__version__ == __import__("importlib.metadata").metadata.version("backprop")
    True
"""
from importlib import metadata

try:
    #: The installed distribution's version: pyproject.toml's ``version``, read once, here.
    __version__ = metadata.version("backprop")
except metadata.PackageNotFoundError:  # imported from a source tree that was never installed
    __version__ = "0+unknown"

__all__ = ["__version__"]
