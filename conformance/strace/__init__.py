"""What a server's system calls say about its socket sharing (``forkshare trace``).

In layers (each imports only those above, and :mod:`forkshare.conformance.observe`)::

    errors          ToolMissingError (strace is not installed)
    strace_log      parse strace -f -tt output into Syscall/ProcessExit events
    syscall_trace   analyze(events): roles, reconstructed fd tables, the master/worker rules
    strace_run      run a command under strace until it listens, poke it, stop it
    command         forkshare trace [--connections N] [--port P] -- CMD …
"""
