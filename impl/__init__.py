"""The reference prefork server (Linux, stdlib only).

It never imports the model, the proofs or the verifier: it is verified from outside, like nginx.
"""
