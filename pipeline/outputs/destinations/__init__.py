"""Destination types, one module each; every module registers its class with
:func:`pipeline.outputs.registry.register`. Adding a destination type = adding a module here
(plus its settings model in ``pipeline/settings.py``)."""
