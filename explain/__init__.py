"""explain: one self-contained HTML page that steps through a forward and backward pass."""
