"""Route tables by resource: experiments, runs, logged models, registry, artifacts, misc."""
