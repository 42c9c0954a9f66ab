"""Plugins that ship with tracklog-core, registered through the same hooks as any other."""
