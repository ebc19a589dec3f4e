"""The integrity harness: numbered lines out of children and recorded keys into them, through a
private daemon, the real CLI and the Python client on real PTYs, under a seeded random
schedule of attaches, observers, pastes, resizes, role changes and upgrades; then the
invariants of DESIGN.md ("Integrity and security") checked on what every reader and child got.
`python -m integrity --help`."""
