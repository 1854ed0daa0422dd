"""poundcake-api's routers. The application includes every module here that has a ``router``,
under its ``PREFIX`` (default ``/api/v1``); a module's ``SELF_RECORDED_PATHS`` are paths whose
routes write their own API call record (in their own transaction) on success."""
