"""``keras.utils.Config``: a dict of named values read and set as attributes or items, that
can be frozen against changes and written as JSON."""
import copy
import difflib
import json

__all__ = ["Config"]


class Config:
    """A dict-like container of named values.

    ``Config(learning_rate=0.1)``; ``config.seed = 1`` and ``config["seed"] = 1`` both set an
    entry, ``config.seed`` and ``config["seed"]`` both read it. ``freeze()`` makes every change
    (setting, ``update``, ``pop``, deleting) raise ``ValueError`` until ``unfreeze()``.
    ``as_dict()`` is a shallow copy, ``to_json()`` the entries as JSON; iterating gives the keys
    in sorted order, as Keras does.
    """

    __attrs__ = None

    def __init__(self, **kwargs):
        self._config = kwargs
        self._frozen = False
        self.__attrs__ = set(dir(self))

    @property
    def frozen(self):
        """True when the config is frozen."""
        return self._frozen

    def freeze(self):
        """Refuse every further change until :meth:`unfreeze`."""
        self._frozen = True

    def unfreeze(self):
        self._frozen = False

    def _raise_if_frozen(self):
        if self._frozen:
            raise ValueError("Cannot mutate attribute(s) because the config is frozen.")

    def as_dict(self):
        return copy.copy(self._config)

    def to_json(self):
        return json.dumps(self._config)

    def keys(self):
        return self._config.keys()

    def values(self):
        return self._config.values()

    def items(self):
        return self._config.items()

    def pop(self, *args):
        self._raise_if_frozen()
        return self._config.pop(*args)

    def update(self, *args, **kwargs):
        self._raise_if_frozen()
        return self._config.update(*args, **kwargs)

    def get(self, keyname, value=None):
        return self._config.get(keyname, value)

    def __setattr__(self, name, value):
        own = object.__getattribute__(self, "__attrs__")
        if own is None or name in own:
            object.__setattr__(self, name, value)
            return
        self._raise_if_frozen()
        self._config[name] = value

    def __getattr__(self, name):           # only called when normal lookup fails
        own = object.__getattribute__(self, "__attrs__")
        if own is None or name in own:
            return object.__getattribute__(self, name)
        config = object.__getattribute__(self, "_config")
        if name in config:
            return config[name]
        msg = f"Unknown attribute: '{name}'."
        close = difflib.get_close_matches(name, list(config), n=1, cutoff=0.7)
        if close:
            msg += f" Did you mean '{close[0]}'?"
        raise AttributeError(msg)

    def __setitem__(self, key, item):
        self._raise_if_frozen()
        self._config[key] = item

    def __getitem__(self, key):
        return self._config[key]

    def __delitem__(self, key):
        self._raise_if_frozen()
        del self._config[key]

    def __contains__(self, item):
        return item in self._config

    def __iter__(self):
        yield from sorted(self._config)

    def __len__(self):
        return len(self._config)

    def __repr__(self):
        return f"<Config {self._config}>"
