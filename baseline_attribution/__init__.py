"""Baseline attribution methods (CAM family, perturbation, gradient and path methods)."""
# Importing a method module registers its methods in base.REGISTRY; one import per line.
from . import base  # noqa: F401
from . import models  # noqa: F401
from . import cam  # noqa: F401
from . import transformer  # noqa: F401
from . import gradient  # noqa: F401
from . import path  # noqa: F401
from . import blackbox  # noqa: F401
from . import intrinsic  # noqa: F401
from . import lrp  # noqa: F401
from .base import REGISTRY, AttributionModel, attribute, from_scorer, register  # noqa: F401
from .models import attribution_model  # noqa: F401
