# The schedule string: one line that replays a run by itself. Runs are deterministic, so the
# string lists every choice and needs no seed; it names the code it was found on (a hash of
# the guest file and of the runtime's sources) so a replay on other code can say so.
#
#   mpv1;guest=examples/buggy/hlt_loop.py#3f2a9c1d04;rt=1a2b3c4d5e;board=pvh-x86_64;cb=vector;
#   unmask=hypercall-if-pending;handlers=irq;clear=first;seed=0;args=n=2;ev=timer@b301
#
# (one line; wrapped here). ev lists the host events in order, each at a choice point: bN is
# HAL boundary N, bN.i the i-th point inside step N (a stub instruction or an idle vCPU).
import hashlib
import os
from dataclasses import dataclass, field

from .events import parse_kind
from .record import Placement, label_str, parse_label

VERSION = "mpv1"
_POLICY_FIELDS = (("cb", "callback"), ("unmask", "unmask"), ("handlers", "handlers"),
                  ("clear", "clear"))  # fmt: skip
_RUNTIME_DIR = os.path.join(os.path.dirname(os.path.abspath(__file__)), "..", "..", "runtime")


def file_hash(path):
    with open(path, "rb") as f:
        return hashlib.sha256(f.read()).hexdigest()[:10]


def runtime_hash():
    """A hash of the runtime's Python sources (what a Python guest runs on)."""
    h = hashlib.sha256()
    root = os.path.normpath(_RUNTIME_DIR)
    for dirpath, dirnames, filenames in os.walk(root):
        dirnames.sort()
        for name in sorted(filenames):
            if name.endswith(".py"):
                path = os.path.join(dirpath, name)
                h.update(os.path.relpath(path, root).encode())
                with open(path, "rb") as f:
                    h.update(f.read())
    return h.hexdigest()[:10]


def display_path(path):
    """The guest path as the string shows it: relative to the current directory if inside."""
    path = os.fspath(path)
    rel = os.path.relpath(os.path.abspath(path))
    return path if rel.startswith("..") else rel


@dataclass
class Schedule:
    guest: str
    guest_hash: str
    rt: str
    board: str
    options: dict  # callback, unmask, handlers, clear
    args: dict = field(default_factory=dict)
    seed: int = 0
    events: list = field(default_factory=list)  # Placements

    def format(self):
        parts = [VERSION, f"guest={self.guest}#{self.guest_hash}", f"rt={self.rt}",
                 f"board={self.board}"]  # fmt: skip
        for short, name in _POLICY_FIELDS:
            parts.append(f"{short}={self.options.get(name, '')}")
        parts.append(f"seed={self.seed}")
        parts.append("args=" + ",".join(f"{k}={v}" for k, v in sorted(self.args.items())))
        parts.append("ev=" + ",".join(f"{p.kind.name}@{label_str(p.label)}" for p in self.events))
        return ";".join(parts)

    __str__ = format

    @classmethod
    def parse(cls, text):
        text = text.strip()
        if text.startswith("schedule:"):
            text = text[len("schedule:") :].strip()
        fields = text.split(";")
        if not fields or fields[0] != VERSION:
            raise ValueError(f"not a micropv schedule string (expected it to start with "
                             f"{VERSION};): {text[:40]!r}")  # fmt: skip
        kv = {}
        for f in fields[1:]:
            if not f:
                continue
            key, sep, value = f.partition("=")
            if not sep:
                raise ValueError(f"schedule field {f!r} has no '='")
            kv[key] = value
        for need in ("guest", "board", "ev"):
            if need not in kv:
                raise ValueError(f"schedule string has no {need}= field")
        guest, _, ghash = kv["guest"].rpartition("#")
        if not guest:
            guest, ghash = ghash, ""
        options = {name: kv[short] for short, name in _POLICY_FIELDS if kv.get(short)}
        args = {}
        for pair in filter(None, kv.get("args", "").split(",")):
            k, _, v = pair.partition("=")
            try:
                args[k] = int(v, 0)
            except ValueError:
                args[k] = v
        events = []
        for item in filter(None, kv["ev"].split(",")):
            name, at, where = item.rpartition("@")
            if not at:
                raise ValueError(f"schedule event {item!r} has no @boundary")
            events.append(Placement(parse_kind(name), parse_label(where)))
        return cls(guest, ghash, kv.get("rt", ""), kv["board"], options, args,
                   int(kv.get("seed", "0") or 0), events)  # fmt: skip
