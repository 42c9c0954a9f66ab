"""tracklog-auth-basic: users, groups, tokens and per-resource permissions for tracklog."""
