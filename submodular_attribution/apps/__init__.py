"""Applications, the top layer: they combine the engine, the baselines, the evaluations and the
figures (``make demo``). Nothing below imports them."""
