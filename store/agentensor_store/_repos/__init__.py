"""One repository per aggregate, each over the shared :class:`~agentensor_store._db.Database`.

The :class:`~agentensor_store.Store` facade validates arguments, then delegates here.
"""
