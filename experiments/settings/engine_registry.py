"""The search engines' names: what `engine=` allows.

Names only, imported without the engines themselves (Keras Tuner is slow to import), so the
configuration can check `engine=` without depending on what it names. The engines, and the one
factory that builds the chosen one (`experiments.engines.factory`), live in `experiments/engines/`.
To add an engine, write a module there with an `Engine` subclass, list it in the factory's
`ENGINES` and add its name here.
"""

from __future__ import annotations

ENGINE_NAMES = ("optuna", "keras_tuner")
ENGINE_ALIASES = ("tuner",)  # the key's earlier name, still taken (with a note)
