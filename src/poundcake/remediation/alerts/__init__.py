"""Alert episodes (fingerprint + startsAt) and their lifecycle."""
