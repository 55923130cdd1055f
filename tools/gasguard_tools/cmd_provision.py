"""`gasguard provision`: write a device's identity (and key) once at the factory, read it
back, verify it against the label and lock it, over the serial service console.
The sequence and its checks are in gasguard_tools.factory and docs/identity.md §5."""

from .factory import add_arguments, run  # noqa: F401
