# `micropv compare`: one workload across callback methods and guest policies, measured from
# each run's trace. sweep.py runs the combinations, metrics.py measures a run, report.py
# prints and writes the rows, plot.py draws them, command.py is the command line's side.
