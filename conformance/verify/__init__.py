"""Verify a real prefork server against the model (``forkshare verify``).

In layers (each imports only those above, :mod:`forkshare.conformance.observe` and the model)::

    errors          ProfileError (exit 2)
    profile         Profile: what a target is and claims; the bundled profiles/*.toml
    target          a profile -> a command line (nginx.conf, a WSGI app, a template filled in)
    probe_run       ProbeRun: the target started fresh for one probe, its tree and its leaks;
                    DiscoveryBudget, the bound of every wait of discovery
    structure_probe who the processes are, the sharing mode, leaks, "not a prefork server"
    probes          defer-accept, respawn, reload, parent death, graceful stop (F1–F10)
    discovery       discover(profile) -> Discovery; apply (fills auto keys); contradictions
    abstraction     Abstract: the record a model state and a real server are compared on;
                    the one mapping from the model's roles to the observer's Role
    machine         the model's action table as a Hypothesis state machine over a Backend
    target_backend  TargetBackend: PERFORMERS, one per environment action, and /proc compared
    trace_check     a forkshare serve --trace file checked against the invariants
    verify          verify(profile) -> Result: the random run, replays, the diagnosis
    scenarios       the known facts as fixed step lists
    command         forkshare verify [--target T | --profile F | --command C] …
"""
