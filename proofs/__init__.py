"""z3 proofs of the model's invariants for any number of workers, and refutations of unsafe designs."""
