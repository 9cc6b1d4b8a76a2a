"""The cross-framework contract suite (docs/contract.md).

Every flavor (asyncio, Twisted, Tornado, gevent, asyncore, concurrent.futures,
Tulip-era generator) is a small object in :mod:`.flavors` that knows how to
make a primitive of its kind and how to await anything from its own side; the
matrix in :mod:`.test_matrix` is generated from the flavors that are available.
See docs/contract.md for what each row means for each flavor.
"""
