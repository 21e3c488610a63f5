"""The labelled verify corpus (see build.py)."""
