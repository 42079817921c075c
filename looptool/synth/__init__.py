"""The seed half of LoopTool (issue #5): API synthesis from context x constraint trees, tool import,
API validation, multi-agent dialogue simulation, two-stage verification and training samples."""
