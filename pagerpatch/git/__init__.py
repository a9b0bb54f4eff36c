"""Git primitives, per-incident worktrees and the repository registry."""
