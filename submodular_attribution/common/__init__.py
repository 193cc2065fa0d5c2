"""Shared I/O and formats, the lowest layer: errors, atomic writes, evaluation lists, images,
result and saliency-map files, curves and AUC arithmetic, provenance, default folders,
multi-process sharding and progress reporting. Nothing here imports the rest of the toolkit."""
