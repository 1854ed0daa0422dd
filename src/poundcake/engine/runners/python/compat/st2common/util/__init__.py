"""StackStorm's ``st2common.util`` modules that packs import: ``isotime`` and ``date``."""
