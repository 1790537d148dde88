"""faust stages: the stream functions of the worker (pipeline/app.py wires them)."""
