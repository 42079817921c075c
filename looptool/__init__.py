"""LoopTool: tool-calling training data and the model evolve together, round after round.

The library is pure where it can be; the DVC stages in ``stages/`` are thin wrappers that read
params and paths, call into here, and write their outputs.
"""

__version__ = "0.1.0"
