"""z3 proofs of the model's invariants for any number of workers, and refutations of unsafe designs.

Layers, each importing only the ones above it:

``encoding``
    The z3 facade — sorts, the state vocabulary, formula constructors, solver frames, model
    reading, the fragment check, grounding. The only module that imports z3.
``predicates``, ``transitions``, ``claims``, ``lemmas``, ``progress``
    The model in z3: derived predicates, one transition per action, one formula per invariant,
    the strengthening lemmas, the enabledness facts. Keyed by the model's table names.
``structure``
    Python states ⇄ finite structures ⇄ z3 facts and models; printing.
``bmc``, ``obligations``, ``searches``, ``freedoms``
    Bounded model checking with replay; init, consecution and progress obligations; witnesses,
    refutations, known-issue confirmations; the freedoms' witness runs checked step by step
    against the transition formulas.
``issues``, ``report``, ``suite``
    Known defects of the model, the records, and :func:`~forkshare.proofs.suite.run_proof_suite`.
"""
