"""The ``orquesta`` runner: Orquesta workflows, hosted by ``st2workflowengine``."""
