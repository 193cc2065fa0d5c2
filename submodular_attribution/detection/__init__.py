"""Object-level models: detection targets, the IoU × score match, detector and grounding adapters,
and the embedded detection benchmark (coloured shapes, several per image, and a small detector).

A detection *target* is one box in an image and a class (or, for grounding models, a phrase).
:class:`~submodular_attribution.detection.scorer.DetectionScorer` turns any detector into an
engine scorer whose "probability" of target t for an image is the best IoU × score match
(:func:`~submodular_attribution.detection.matching.match_scores`), so the SMDL engine, its
searches, result format and evaluations work unchanged.
"""
