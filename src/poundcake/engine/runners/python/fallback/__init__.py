"""Stand-ins for libraries StackStorm's own environment gives pack code, used only when the pack
has no real one: this directory (:data:`FALLBACK_DIR`) goes last on the ``PYTHONPATH`` of action
and sensor processes, after the pack's virtualenv and the engine's libraries.
"""

from pathlib import Path

FALLBACK_DIR = Path(__file__).resolve().parent
