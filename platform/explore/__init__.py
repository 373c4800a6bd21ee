# The race explorer: place host events (a backend's send, a timer expiry) at every interrupt
# window of a deterministic guest run, check the lost-wakeup invariants on each run, and print
# a minimal, replayable counterexample. Design: ../../../shared/reference/race-explorer.md.
#
#   record.py    choice points and what each step touched (one run of a schedule)
#   events.py    host event kinds: when they are enabled, what they touch, firing them
#   conflict.py  conflict segments: which placements give equivalent runs
#   search.py    exhaustive (iterative deepening on k), PCT, random (Hypothesis)
#   monitors.py  the checks every run gets
#   schedule.py  the one-line schedule string
#   timeline.py  the two-column counterexample timeline
#   minimise.py  ddmin and canonical placements
#   cli.py       `micropv explore`
#   replay.py    pytest --micropv-replay
#   hoststeps.py host operations written as steps (the RISC-V producer/consumer seam)
