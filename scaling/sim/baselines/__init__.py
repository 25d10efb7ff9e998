"""Baseline policies for replay, each implemented from its public definition (named in its module)."""
