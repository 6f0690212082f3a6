"""The verifier's three tools, one room each; every room imports only the rooms above it::

    observe   what /proc shows about a running server, knowing nothing of the model
              (``forkshare inspect``); also the launcher every part uses to start a server
      ^
      |── strace   what a server's system calls show (``forkshare trace``)
      |
    verify    the model's actions driven against a real server, every step compared with the
              observations the model allows (``forkshare verify``)

``observe`` imports no part of the model but its clients' vocabulary
(:class:`~forkshare.model.observation.Outcome`); ``strace`` imports ``observe`` only; ``verify``
imports ``observe``, the model and Hypothesis. ``tests/test_architecture.py`` enforces this.
Each room keeps its own ``errors`` module and its own ``command`` (the sub-command's ``main``).
"""
