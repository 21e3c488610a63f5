"""Pictures: the notes' network diagram (:mod:`.draw`) and plots of training runs, of the GD
variants compared and of the vanishing gradients (:mod:`.plots`).  The numbers come from
:mod:`backprop.train`; this package draws them and imports train, never the reverse."""
