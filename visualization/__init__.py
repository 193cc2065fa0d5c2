"""Figures: ordering heat-maps over images and insertion/deletion curves."""
