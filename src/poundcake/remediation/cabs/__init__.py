"""CABs (Custom Action Buckets): ordered remediation steps mapped onto engine rules."""
