"""Code generation: a Spec becomes a standalone, readable NumPy trainer module.

    >>> from backprop.codegen import render_trainer, load_trainer
    >>> from backprop.derive import make_spec
    >>> spec = make_spec("2-2-1", "linear", "se")
    >>> source = render_trainer(spec)            # the text (numpy + standard library only)
    >>> trainer = load_trainer(spec)             # the same text, imported
    >>> params = trainer.init_params(scheme="ones")
    >>> trainer.forward(params, [[80, 8]])
    array([[176.]])

The generated module's API: constants ``LAYERS``, ``ACTIVATIONS``, ``LOSS``, ``BIAS``,
``DTYPE``; ``init_params(seed=None, scheme="glorot", dtype=None)``, ``forward(params, X)``,
``forward(params, X, every_node=True)`` (every Z and O), ``nodes(params, X)``, ``loss(params, X, Y)``, ``gradients(params, X, Y)``,
``loss_and_gradients(params, X, Y)``, ``grad_sum(params, X, Y)`` (sums over rows, for data-parallel
training; not with batch norm), ``sgd_step(params, X, Y, lr)``,
``train(params, X, Y, epochs, lr, batch_size=None, shuffle=True, seed=None, callback=None)``;
on raw rows, applying a ``params["standardise"]`` from ``fit_standardise(X)``: ``predict``,
``predict_proba`` and ``accuracy`` (classifiers: ``KIND`` "classes" for cce, "binary" for bce);
``save_model``/``load_model`` (backprop's model file, old plain files too); ``split_rows``
(the test split backprop train draws) and ``main(argv=None)`` (train on a CSV file); the
last four are the runtime, which ``render_trainer(..., cli=False)`` (``backprop generate
--no-cli``) leaves out.

Pipeline: :mod:`.forms` (SymPy pieces from the derivation) → :mod:`.printer` (NumPy text) →
:mod:`.render` (context + Jinja2 templates in ``templates/``); names from :mod:`.naming`.
"""
from __future__ import annotations

import atexit
import importlib.util
import shutil
import sys
import tempfile
import threading
from pathlib import Path
from types import ModuleType

from backprop.derive import Spec

from . import backends
from .backends import BACKENDS
from .render import DTYPES, render, trainer_context

__all__ = ["BACKENDS", "DTYPES", "import_source", "load_trainer", "render_trainer"]


def render_trainer(spec: Spec, dtype: str = "float64", command: str | None = None, cli: bool = True,
                   backend: str = backends.DEFAULT) -> str:
    """The source of a standalone trainer for ``spec`` (NumPy by default).

    Parameters
    ----------
    spec : Spec
        The network (validated).
    dtype : {"float64", "float32"}
        The generated module's DTYPE (the default dtype of its parameters).
    command : str or None
        The command line recorded in the header ("regenerate with: ...").
    cli : bool
        Include the runtime: model files (``save_model``/``load_model``), the CSV reader,
        ``split_rows`` and ``main``.  False: the maths, training and predictions only, a
        module that imports NumPy alone (and its engine: numba, JAX) and has no ``__main__``.
    backend : str
        A key of :data:`BACKENDS`: ``numpy`` (imports numpy only), ``numba`` (the epoch
        compiled), ``jax`` (jitted, on whatever device JAX finds).  Rendering needs none of
        them installed; importing the result does.

    Returns
    -------
    str
        Python source; rendering the same arguments again gives the same bytes.
    """
    entry = backends.backend(backend)
    context = trainer_context(spec, dtype=dtype, command=command, cli=cli, engine=entry.engine,
                              engine_modules=entry.modules)
    if entry.context is not None:
        context.update(entry.context(spec, dtype, context))
    return render(entry.template, context)


_CACHE: dict[tuple[Spec, str, str], ModuleType] = {}
_LOCK = threading.Lock()
_FOLDER: Path | None = None


def _folder() -> Path:
    """One temporary folder per process for imported trainers, removed at exit."""
    global _FOLDER
    if _FOLDER is None:
        _FOLDER = Path(tempfile.mkdtemp(prefix="backprop-trainers-"))
        atexit.register(shutil.rmtree, _FOLDER, ignore_errors=True)
    return _FOLDER


def load_trainer(spec: Spec, dtype: str = "float64", backend: str = backends.DEFAULT) -> ModuleType:
    """Render ``spec``'s trainer and import it (cached per (spec, dtype, backend)).

    The source is written to a real file before importing, so ``inspect.getsource`` and
    ``pdb`` show the generated code.  A backend whose engine is not installed is a one-line
    :class:`~backprop.core.errors.UserError` naming the pip extra.
    """
    backends.require(backend)
    key = (spec, dtype, backend)
    with _LOCK:
        if key not in _CACHE:
            source = render_trainer(spec, dtype=dtype, backend=backend)
            suffix = "" if backend == backends.DEFAULT else f"_{backend}"
            _CACHE[key] = import_source(source, f"backprop_trainer_{spec.digest()}_{dtype}{suffix}")
        return _CACHE[key]


def import_source(source: str, name: str) -> ModuleType:
    """Import a trainer from the source :func:`render_trainer` made (never user text): written
    to ``name``.py in this process's temporary folder first, so tracebacks, ``inspect`` and
    numba's on-disk cache see a real file.  Dask workers import the client's trainer this way."""
    if not name.isidentifier():
        raise ValueError(f"not a module name: {name!r}")
    path = _folder() / f"{name}.py"
    path.write_text(source, encoding="utf-8")
    module_spec = importlib.util.spec_from_file_location(name, path)
    module = importlib.util.module_from_spec(module_spec)
    sys.modules[name] = module
    module_spec.loader.exec_module(module)
    return module
