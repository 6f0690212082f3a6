"""The abstract state machine of listening-socket sharing in a prefork server (pure, stdlib only)."""
