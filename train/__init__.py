"""Training with the generated NumPy trainers: data, one step, runs, metrics, model files."""
