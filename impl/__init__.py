"""The reference prefork server (Linux, stdlib only). It never imports the model: it is verified from outside."""
