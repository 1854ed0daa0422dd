"""The web UI's HTTP edge: pages and login (:mod:`.session`), its JSON API (:mod:`.data`) and
live events (:mod:`.events`), on the services of :mod:`poundcake.remediation.ui`."""
