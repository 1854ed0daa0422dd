"""StackStorm's REST API over the engine: routers, wire documents, errors, auth. HTTP only."""
