"""A plugin whose import fails."""

raise ImportError("no module named imaginary_storage_sdk")
