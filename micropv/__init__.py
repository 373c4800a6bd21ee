"""micropv: a Xen-style paravirtual guest runtime and the machine it runs on.

`micropv.runtime` is the guest side (MicroPython-compatible), `micropv.platform` the host
(Unicorn vCPUs and the Xen stub), `micropv.boards` the data that composes them.
"""

import os as _os

__version__ = "0.1.0"

# In a source checkout (an editable install), runtime/, platform/ and boards/ sit beside this
# folder. setuptools' editable finder cannot map `platform/`, which must have no __init__.py
# (it would shadow the standard library's `platform`), so let the import system look there.
_root = _os.path.dirname(_os.path.dirname(_os.path.abspath(__file__)))
if _os.path.isdir(_os.path.join(_root, "platform")) and _os.path.isdir(
    _os.path.join(_root, "runtime")
):
    __path__.append(_root)  # noqa: F821 -- __path__ exists in a package's __init__
