"""Modules that Python actions import from StackStorm, written for PoundCake.

This directory goes on the ``PYTHONPATH`` of the action subprocess only, so pack code can say
``from st2common.runners.base_action import Action``; the engine never imports it that way.
"""
