"""One module per implementation; each exposes ``make(cfg, params0, X, Y, dtype) -> Runner``.

A Runner has ``reset()`` (restore the initial weights; not timed), ``epoch()`` (one epoch of
minibatch SGD in row order, lr constant; timed), ``params()`` (the weights as NumPy float64
arrays named W1, b1, ...; not timed) and ``sync()`` (wait for pending device work; timed with
the epoch).  Peers import their framework at module import, so a missing install shows up as
an ImportError the harness reports as "not installed".
"""
