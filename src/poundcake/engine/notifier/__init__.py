"""The notifier: what happens after an execution finishes (notify triggers, post-run policies)."""
