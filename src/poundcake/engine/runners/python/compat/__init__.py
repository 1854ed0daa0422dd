"""Modules that pack code imports from StackStorm, written for PoundCake.

This directory (:data:`COMPAT_DIR`) goes first on the ``PYTHONPATH`` of action and sensor
processes only, so pack code can say ``from st2common.runners.base_action import Action``; the
engine never imports it that way.
"""

from pathlib import Path

COMPAT_DIR = Path(__file__).resolve().parent
