"""Kept for models registered before the registry's own package: MLflow pickled their serving
class by reference to this module's name, so they still load (`experiments.registry.serving`)."""

from experiments.registry.serving import ColorizeModel

__all__ = ["ColorizeModel"]
