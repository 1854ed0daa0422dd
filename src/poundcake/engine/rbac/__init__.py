"""RBAC as StackStorm has it: roles, permission grants, assignments, group mappings."""
