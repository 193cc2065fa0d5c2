"""Model adapters: each builds a :class:`~submodular_attribution.models.Scorer` for one model
family from the user's weights in ``ckpt/``. Heavy libraries are imported inside the builders."""
