"""The scheduler: requested -> scheduled (or delayed), policies, and the lifecycle sweep."""
