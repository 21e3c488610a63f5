"""``python -m backprop``: the ``backprop`` command."""
import sys

from backprop.cli.main import main

if __name__ == "__main__":
    sys.exit(main())
