"""The subcommands: each module with NAME, HELP, add_arguments and run is one (cli/main.py)."""
