"""The verifier: drive any prefork server with the model's actions and check what /proc shows."""
