"""Serving model, fleet simulator, trace generator, oracle and replay. Pure: no Django, no boto3."""
