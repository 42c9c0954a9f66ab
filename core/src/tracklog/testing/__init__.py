"""The tracklog conformance kit."""
