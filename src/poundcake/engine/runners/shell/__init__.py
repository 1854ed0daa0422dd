"""The ``local-shell-cmd`` and ``local-shell-script`` runners: commands and scripts on this host."""
