"""The optional compiled module (``axone._kernels``) as the ops see it: ``kernels(name)`` is the
module when it is in use and has the function ``name``, else None (not built, or
``AXONE_KERNELS=0``).  It is loaded once, at import, in axone/_native.py."""
from .._native import kernels, seq_kernels

__all__ = ["kernels", "seq_kernels"]
