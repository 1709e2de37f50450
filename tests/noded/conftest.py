"""The node tier: shared builders live in `jobs.py` (steps to run) and `fake_gateway.py` (a
scripted control plane); this conftest puts this directory on the import path for the
subdirectories' tests."""
