"""The verifier: drive any prefork server with the model's actions and check what /proc shows.

The observer half, which knows nothing of the model, in layers (each imports only those above)::

    errors          the errors and their exit codes (2 usage, 1 failure, 3 target did not start)
    procfs          parse and read /proc files (DOMAIN §8); a vanished process reads as None
    deadline        wait_until: every wait is bounded
    observer        snapshot(root_pid | port) -> ServerSnapshot; who_accepted(client_port)
    sharing_mode    infer_mode(snapshot) -> ModeInference (blocking, poll, exclusive, …)
    client          probe(port) -> ClientResult (response, reset, refused, timeout, closed)
    process_group   ProcessGroup: a started command, killed with its whole group
    launch          launch(argv, port) -> RunningTarget: started and listening, or exit 3
    rendering       a snapshot as rich tables, JSON or graphviz DOT
    inspect_command forkshare inspect --port P | --pid PID [--svg FILE] [--json]
    strace_log      parse strace -f -tt output into Syscall/ProcessExit events
    syscall_trace   analyze(events): roles, reconstructed fd tables, the master/worker rules
    strace_run      run a command under strace until it listens, poke it, stop it
    trace_command   forkshare trace [--connections N] [--port P] -- CMD …
"""
