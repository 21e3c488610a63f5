"""What every other folder stands on: errors, user-file reading, atomic writes, the CSV contract.

It imports nothing of backprop outside itself, so cli/, train/, derive/ and the generated
trainers' template all use it without a cycle (tests/test_layers.py keeps it that way).
"""
