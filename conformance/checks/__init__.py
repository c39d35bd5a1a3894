"""Check modules, one per profile (a package where a profile's checks need several modules).

The machinery they share lives beside this package: ``registry`` (``@check``), ``context``,
``judging``, ``properties``, ``traffic``, ``streams``, ``inflight`` and ``lifecycle_driver``.
"""
