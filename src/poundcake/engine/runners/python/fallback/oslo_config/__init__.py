"""A stand-in for ``oslo_config``: only ``cfg.CONF``, reading the engine's st2.conf."""
