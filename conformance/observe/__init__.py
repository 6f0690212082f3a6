"""Observe a running prefork server from outside: /proc, its process tree, its clients.

In layers (each imports only those above)::

    errors          the errors and their exit codes (2 usage, 1 failure, 3 target did not start)
    procfs          parse and read /proc files (DOMAIN §8); a vanished process reads as None
    deadline        wait_until: every wait is bounded
    role            Role: master, worker, orphan, launcher, helper — every tool's one vocabulary
    observer        snapshot(root_pid | port) -> ServerSnapshot; who_accepted(client_port)
    sharing_mode    infer_mode(snapshot) -> ModeInference (blocking, poll, exclusive, …)
    socket_probe    read_socket(pid, fd): a listener's options through pidfd_getfd;
                    same_open_file: kcmp — "unknown" where ptrace permission is missing
    kernel_objects  kernel_objects(snapshot) -> KernelObjects: descriptors → open file
                    descriptions → sockets → accept queues, the picture's model
    client          Client (polled) and probe(port) (one-shot): the model's Outcome of a connection
    process_group   ProcessGroup: a started command, killed with its whole group
    launch          launch(argv, port) -> RunningTarget: started and listening, or exit 3; the
                    one launcher of the verifier, the tracer, the benchmark and the tests
    rendering       a snapshot as rich tables or JSON
    kernel_picture  the picture of what is shared as text lines or graphviz DOT (en, ja)
    command         forkshare inspect --port P | --pid PID [--svg FILE] [--json]
"""
