"""The key-value datastore (``st2kv.system`` and ``st2kv.user``)."""
