"""Operations: backup and restore, status, metrics, database grants."""
