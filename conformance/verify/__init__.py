"""Verify a real prefork server against the model (``forkshare verify``).

In layers (each imports only those above, :mod:`forkshare.conformance.observe` and the model)::

    errors          ProfileError (exit 2), ClosureTooLargeError
    profile         Profile and KEYS: what a target is and claims, every key a flag;
                    the bundled profiles/*.toml
    options         the command line built from KEYS; the exit codes
    target          a profile -> a command line (nginx.conf, a WSGI app, a template filled in)
    probe_run       ProbeRun: the target started fresh for one probe, its tree and its leaks;
                    DiscoveryBudget, the bound of every wait of discovery
    structure_probe who the processes are, the sharing mode, leaks, "not a prefork server"
    probes          defer-accept, respawn, reload, parent death, graceful stop (F1–F10)
    discovery       discover(profile) -> Discovery; apply (fills auto keys); contradictions
    abstraction     Abstract: the record a model state and a real server are compared on;
                    the one mapping from the model's roles to the observer's Role
    coverage        which actions a run performed or inferred, which records it saw
    scenarios       programs of the model's actions aimed at where defects hide
    machine         the model's action table as a Hypothesis state machine over a Backend
    view            a real server as an Observation (real pids and inodes) for the monitors
    timing          the timed properties measured: clocks with bounds
    target_backend  TargetBackend: PERFORMERS, one per environment action, /proc compared,
                    monitors and clocks run on every observation
    trace_check     a forkshare serve --trace file checked against the invariants
    verify          verify(profile) -> Result: discovery, scenarios, walks, the diagnosis
    report          the verdict table, the evidence, coverage, --json
    command         forkshare verify [--target T | --profile F | --command C] …
"""
