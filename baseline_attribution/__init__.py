"""Baseline attribution methods (CAM family, perturbation, gradient and path methods)."""
