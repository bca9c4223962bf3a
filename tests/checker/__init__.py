"""A model-based fault checker for docstore, in the style of Jepsen's checkers and
FoundationDB's simulation (docs/reliability.md, "The checker").

From a seed, ``generate`` makes a plan: steps of concurrent operations (puts, appends,
keyed writes and their retries, deletes, purges, prunes of documents, versions and the
feed run from two hosts at once, export | import, feed consumers that stop and resume
from saved cursors, reads through a lagging or failing-over standby, hostile inputs)
mixed with faults (``faults``: lost replies, killed connections, a primary killed with
-9, replay paused, a link cut, a transaction held open in another database, a move to
another cluster). ``runner`` carries it out against a ``worlds`` system, recording
every call and its outcome in a ``history``; ``model`` works out what the history
promises, and ``properties`` checks it. A failing run is shrunk to the shortest plan
that still fails, and printed with its seed.
"""
