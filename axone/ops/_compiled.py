"""The optional compiled module (``axone._kernels``) as the ops see it: None when it is not built
or ``AXONE_KERNELS=0`` turned it off (the optimizers load it and read that setting)."""

_LOADED = []


def kernels(name):
    """The compiled module when it is in use and has the function ``name``, else None."""
    if not _LOADED:
        from ..optimizers import _KERNELS
        _LOADED.append(_KERNELS)
    k = _LOADED[0]
    return k if k is not None and hasattr(k, name) else None
