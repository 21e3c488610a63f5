"""The ``backprop`` command: one module per subcommand in :mod:`backprop.cli.commands`."""
