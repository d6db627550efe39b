"""One module per lint rule; see corral.analyze.lint."""
