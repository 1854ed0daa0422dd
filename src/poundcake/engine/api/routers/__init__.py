"""One router per StackStorm resource."""
