"""SMDL: submodular region attribution — the engine, model adapters and per-task scripts."""
