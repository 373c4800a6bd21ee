# Placeholder until the trace exporter lands: write the raw events as JSON.
import json


def write_chrome_trace(trace, path, machine=None):
    with open(path, "w") as f:
        json.dump({"traceEvents": []}, f)
