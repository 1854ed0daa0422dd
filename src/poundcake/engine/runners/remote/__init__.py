"""The ``remote-shell-cmd`` and ``remote-shell-script`` runners: commands and scripts over SSH."""
