"""A live fuzzer for the daemon: `python -m stress --cases N --seconds S`."""
