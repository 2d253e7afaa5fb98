"""``keras.utils.FeatureSpace``: preprocessing and encoding of structured (dict) data.

Each feature has a preprocessor layer from ``layers/features.py`` (Normalization,
Discretization, IntegerLookup, StringLookup, Hashing) or ``Rescaling`` / ``Identity``, and an
output mode: ``"float"`` (as it is), ``"int"`` (the preprocessor's integer indices) or
``"one_hot"`` (those indices multi-hot encoded by a ``CategoryEncoding`` of the preprocessor's
cardinality). Crosses hash the preprocessed values of several features together
(``HashedCrossing``). The encoded features are concatenated (``output_mode="concat"``: the
features by sorted name, then the crosses by sorted name) or returned as a dict.

The data are processed with NumPy; the FeatureSpace is also a layer, so
``get_encoded_features()`` (the FeatureSpace called on ``get_inputs()``) is a symbolic tensor
a functional model can be built on.
"""
import numpy as np

from .. import backend
from ..autograd.tensor import Tensor
from ..layers.base import KerasTensor, Layer, unique_name

__all__ = ["FeatureSpace", "Feature", "Cross"]

_MODULE = "keras.src.layers.preprocessing.feature_space"


def _layers():
    from .. import layers
    return layers


def _serialize(obj):
    from ..saving import serialize_keras_object
    return serialize_keras_object(obj)


def _deserialize(config):
    from ..saving import deserialize_keras_object
    return deserialize_keras_object(config)


def _wrap(obj):
    """Keras's serialized form of a Feature or a Cross."""
    name = type(obj).__name__
    return {"module": _MODULE, "class_name": name, "config": obj.get_config(),
            "registered_name": name}


def _unwrap(config, cls):
    if config.get("class_name") != cls.__name__:
        raise ValueError(f"FeatureSpace: expected a serialized {cls.__name__}, received "
                         f"{config!r}")
    return cls.from_config(config["config"])


class Cross:
    """Features to hash together into ``crossing_dim`` bins (``output_mode`` "int" or
    "one_hot"); named ``"a_X_b"``."""

    def __init__(self, feature_names, crossing_dim, output_mode="one_hot"):
        if output_mode not in {"int", "one_hot"}:
            raise ValueError(f"Invalid value for argument `output_mode`. Expected one of "
                             f"{{'int', 'one_hot'}}. Received: output_mode={output_mode}")
        self.feature_names = tuple(feature_names)
        self.crossing_dim = crossing_dim
        self.output_mode = output_mode

    @property
    def name(self):
        return "_X_".join(self.feature_names)

    def get_config(self):
        return {"feature_names": self.feature_names, "crossing_dim": self.crossing_dim,
                "output_mode": self.output_mode}

    @classmethod
    def from_config(cls, config):
        return cls(**config)


class Feature:
    """A feature: the dtype of its input, its preprocessor layer and its output mode
    ("int", "one_hot" or "float")."""

    def __init__(self, dtype, preprocessor, output_mode):
        if output_mode not in {"int", "one_hot", "float"}:
            raise ValueError(f"Invalid value for argument `output_mode`. Expected one of "
                             f"{{'int', 'one_hot', 'float'}}. Received: output_mode={output_mode}")
        self.dtype = dtype
        if isinstance(preprocessor, dict):
            preprocessor = _deserialize(preprocessor)
        if not callable(preprocessor):
            raise TypeError(f"Feature: preprocessor must be a layer (or a callable), received "
                            f"{type(preprocessor).__name__}")
        self.preprocessor = preprocessor
        self.output_mode = output_mode

    def get_config(self):
        return {"dtype": self.dtype, "preprocessor": _serialize(self.preprocessor),
                "output_mode": self.output_mode}

    @classmethod
    def from_config(cls, config):
        return cls(**config)


def _numpy(x):
    if isinstance(x, Tensor):
        return x.data
    if hasattr(x, "detach") and hasattr(x, "cpu"):            # a torch tensor
        return x.detach().cpu().numpy()
    if hasattr(x, "numpy") and not isinstance(x, np.ndarray):  # a tf tensor
        x = x.numpy()
    arr = np.asarray(x)
    if arr.dtype.kind == "S":
        arr = arr.astype(object)
    return arr


def _is_int(arr):
    return arr.dtype.kind in "iu"


class FeatureSpace(Layer):
    """Preprocess and encode a dict of features, as ``keras.utils.FeatureSpace``.

    Args:
        features: dict of feature name → a type name (``"float"``, ``"float_normalized"``,
            ``"float_rescaled"``, ``"float_discretized"``, ``"integer_categorical"``,
            ``"string_categorical"``, ``"integer_hashed"``, ``"string_hashed"``) or a
            :class:`Feature` from the class methods below.
        output_mode: ``"concat"`` (one float32 vector) or ``"dict"`` (one entry per feature
            and cross).
        crosses: features to cross, e.g. ``[("a", "b")]`` or ``FeatureSpace.cross(...)``.
        crossing_dim, hashing_dim, num_discretization_bins: the defaults for crosses,
            hashed features and discretized features given by name.

    ``adapt(dataset)`` learns the preprocessors' state from a dict of arrays (or an iterable
    of such dicts); calling the FeatureSpace on a dict of arrays (or scalars) returns the
    encoded data.
    """

    # ---------------------------------------------------------------- feature types
    @classmethod
    def cross(cls, feature_names, crossing_dim, output_mode="one_hot"):
        return Cross(feature_names, crossing_dim, output_mode=output_mode)

    @classmethod
    def feature(cls, dtype, preprocessor, output_mode):
        return Feature(dtype, preprocessor, output_mode)

    @classmethod
    def float(cls, name=None):
        name = name or unique_name("float")
        return Feature("float32", _layers().Identity(dtype="float32",
                                                     name=f"{name}_preprocessor"), "float")

    @classmethod
    def float_rescaled(cls, scale=1.0, offset=0.0, name=None):
        name = name or unique_name("float_rescaled")
        return Feature("float32", _layers().Rescaling(scale=scale, offset=offset,
                                                      name=f"{name}_preprocessor"), "float")

    @classmethod
    def float_normalized(cls, name=None):
        name = name or unique_name("float_normalized")
        return Feature("float32", _layers().Normalization(axis=-1, name=f"{name}_preprocessor"),
                       "float")

    @classmethod
    def float_discretized(cls, num_bins, bin_boundaries=None, output_mode="one_hot", name=None):
        name = name or unique_name("float_discretized")
        return Feature("float32", _layers().Discretization(
            num_bins=num_bins, bin_boundaries=bin_boundaries, name=f"{name}_preprocessor"),
            output_mode)

    @classmethod
    def integer_categorical(cls, max_tokens=None, num_oov_indices=1, output_mode="one_hot",
                            name=None):
        name = name or unique_name("integer_categorical")
        return Feature("int32", _layers().IntegerLookup(
            name=f"{name}_preprocessor", max_tokens=max_tokens, num_oov_indices=num_oov_indices),
            output_mode)

    @classmethod
    def string_categorical(cls, max_tokens=None, num_oov_indices=1, output_mode="one_hot",
                           name=None):
        name = name or unique_name("string_categorical")
        return Feature("string", _layers().StringLookup(
            name=f"{name}_preprocessor", max_tokens=max_tokens, num_oov_indices=num_oov_indices),
            output_mode)

    @classmethod
    def string_hashed(cls, num_bins, output_mode="one_hot", name=None):
        name = name or unique_name("string_hashed")
        return Feature("string", _layers().Hashing(name=f"{name}_preprocessor",
                                                   num_bins=num_bins), output_mode)

    @classmethod
    def integer_hashed(cls, num_bins, output_mode="one_hot", name=None):
        name = name or unique_name("integer_hashed")
        return Feature("int32", _layers().Hashing(name=f"{name}_preprocessor",
                                                  num_bins=num_bins), output_mode)

    # ---------------------------------------------------------------- construction
    def __init__(self, features, output_mode="concat", crosses=None, crossing_dim=32,
                 hashing_dim=32, num_discretization_bins=32, name=None):
        super().__init__(name=name)
        if not features:
            raise ValueError("The `features` argument cannot be None or empty.")
        if not isinstance(features, dict):
            raise TypeError(f"FeatureSpace: features must be a dict of feature name → type, "
                            f"received {type(features).__name__}")
        self.crossing_dim = crossing_dim
        self.hashing_dim = hashing_dim
        self.num_discretization_bins = num_discretization_bins
        self.features = {n: self._standardize_feature(n, v) for n, v in features.items()}
        self.crosses = []
        for cross in crosses or ():
            if isinstance(cross, dict):
                cross = _unwrap(cross, Cross)
            if not isinstance(cross, Cross):
                if not crossing_dim:
                    raise ValueError("When specifying `crosses`, the argument `crossing_dim` "
                                     "(dimensionality of the crossing space) should be "
                                     "specified as well.")
                cross = Cross(cross, crossing_dim=crossing_dim)
            unknown = [k for k in cross.feature_names if k not in self.features]
            if unknown:
                raise ValueError(f"All features referenced in the `crosses` argument should be "
                                 f"present in the `features` dict. Received unknown features: "
                                 f"{cross.feature_names}")
            self.crosses.append(cross)
        self.crosses_by_name = {c.name: c for c in self.crosses}
        if output_mode not in {"dict", "concat"}:
            raise ValueError(f"Invalid value for argument `output_mode`. Expected one of "
                             f"{{'dict', 'concat'}}. Received: output_mode={output_mode}")
        self.output_mode = output_mode
        self.preprocessors = {n: f.preprocessor for n, f in self.features.items()}
        self.crossers = {c.name: _layers().HashedCrossing(c.crossing_dim, name=c.name)
                         for c in self.crosses}
        self.inputs = None
        self.encoded_features = None
        self.one_hot_encoders = {}
        self._is_adapted = False
        self._sublayers_built = False
        self._widths = None
        self._dtypes = None

    def _standardize_feature(self, name, feature):
        if isinstance(feature, Feature):
            return feature
        if isinstance(feature, dict):
            return _unwrap(feature, Feature)
        if feature == "float":
            return self.float(name=name)
        if feature == "float_normalized":
            return self.float_normalized(name=name)
        if feature == "float_rescaled":
            return self.float_rescaled(name=name)
        if feature == "float_discretized":
            return self.float_discretized(name=name, num_bins=self.num_discretization_bins)
        if feature == "integer_categorical":
            return self.integer_categorical(name=name)
        if feature == "string_categorical":
            return self.string_categorical(name=name)
        if feature == "integer_hashed":
            return self.integer_hashed(self.hashing_dim, name=name)
        if feature == "string_hashed":
            return self.string_hashed(self.hashing_dim, name=name)
        raise ValueError(f"Invalid feature type: {feature}")

    # ---------------------------------------------------------------- adapt
    def _adaptable(self):
        """The features whose preprocessor learns from data: not a Normalization given its
        mean and variance, a lookup given its vocabulary, or a Discretization given its
        boundaries."""
        layers = _layers()
        names = []
        for name, p in self.preprocessors.items():
            if not hasattr(p, "adapt"):
                continue
            if isinstance(p, layers.Normalization) and p.input_mean is not None:
                continue
            if getattr(p, "_has_input_vocabulary", False):
                continue
            if isinstance(p, layers.Discretization) and p.num_bins is None:
                continue
            names.append(name)
        return names

    @staticmethod
    def _feature_batches(dataset, name):
        """The batches Keras adapts a feature on: a dict of arrays is sliced into elements
        along axis 0; scalar elements are batched 32 at a time; batches of rank 0 or 1 get a
        last axis of size 1."""
        if isinstance(dataset, dict):
            arr = _numpy(dataset[name])
            if arr.ndim <= 1:
                arr = arr.reshape(-1)
                return [arr[i:i + 32, None] for i in range(0, len(arr), 32)]
            return [row[..., None] if row.ndim <= 1 else row for row in arr]
        out = []
        for batch in dataset:
            if isinstance(batch, tuple):
                batch = batch[0]
            if not isinstance(batch, dict):
                raise ValueError(f"FeatureSpace.adapt: each element of the dataset must be a "
                                 f"dict of features, received {type(batch).__name__}")
            x = _numpy(batch[name])
            out.append(x.reshape(1, 1) if x.ndim == 0 else x[:, None] if x.ndim == 1 else x)
        return out

    def adapt(self, dataset):
        """Learn each adaptable preprocessor's state (vocabularies, mean and variance, bin
        boundaries) from ``dataset``: a dict of arrays or lists, or an iterable of dicts of
        batches (a tuple element ``(x, y)`` gives ``x``)."""
        if not isinstance(dataset, dict) and (isinstance(dataset, (str, bytes, np.ndarray))
                                              or not hasattr(dataset, "__iter__")):
            raise ValueError(f"`adapt()` can only be called on a dataset or a dict of "
                             f"arrays/lists. Received instead: {dataset!r} (of type "
                             f"{type(dataset)})")
        if not isinstance(dataset, dict):
            dataset = list(dataset)            # each feature reads the batches again
        for name in self._adaptable():
            try:
                batches = self._feature_batches(dataset, name)
            except KeyError:
                raise ValueError(f"FeatureSpace.adapt: the dataset has no feature {name!r}") from None
            if not batches:
                raise ValueError("FeatureSpace.adapt: the dataset is empty")
            self.preprocessors[name].adapt(iter(batches))
        self._is_adapted = True
        self._build_encoders()
        self.get_encoded_features()
        self.built = True

    def _check_if_adapted(self):
        if not self._is_adapted:
            if self._adaptable():
                raise ValueError("You need to call `.adapt(dataset)` on the FeatureSpace before "
                                 "you can start using it.")
            self._is_adapted = True

    def _check_if_built(self):
        if not self._sublayers_built:
            self._check_if_adapted()
            self._build_encoders()

    # ---------------------------------------------------------------- encoding
    def _preprocess(self, data):
        out = {}
        for name in self.features:
            x = data[name]
            if self.features[name].dtype == "float32" and x.dtype.kind in "biuf":
                x = x.astype(backend.floatx())
            out[name] = _numpy(self.preprocessors[name](x))
        return out

    def _cross(self, pre):
        return {c.name: _numpy(self.crossers[c.name]([pre[n] for n in c.feature_names]))
                for c in self.crosses}

    def _names(self):
        return sorted(self.features) + sorted(self.crosses_by_name)

    def _cardinality(self, name):
        layers = _layers()
        p = self.preprocessors.get(name) or self.crossers.get(name)
        if isinstance(p, (layers.IntegerLookup, layers.StringLookup)):
            return p.vocabulary_size()
        if isinstance(p, layers.CategoryEncoding):
            return p.num_tokens
        if isinstance(p, (layers.Discretization, layers.HashedCrossing, layers.Hashing)):
            return p._depth() if isinstance(p, layers.Discretization) else p.num_bins
        raise ValueError(f"Feature '{name}' has `output_mode='one_hot'`. However it isn't a "
                         f"standard feature and the dimensionality of its output space is not "
                         f"known, thus it cannot be one-hot encoded. Try using "
                         f"`output_mode='int'`.")

    def _build_encoders(self):
        """Make the one-hot encoders and check the output dtypes, by running the preprocessors
        once on a one-row sample of each feature's dtype (Keras does it symbolically)."""
        layers = _layers()
        sample = {}
        for name, f in self.features.items():
            if f.dtype == "string":
                sample[name] = np.array([[""]], dtype=object)
            else:
                sample[name] = np.zeros((1, 1), dtype=np.dtype(f.dtype))
        pre = self._preprocess(sample)
        crossed = self._cross(pre)
        merged = {**pre, **crossed}
        self.one_hot_encoders = {}
        widths, dtypes = {}, {}
        for name in self._names():
            spec = self.features.get(name) or self.crosses_by_name[name]
            x = merged[name]
            if spec.output_mode == "one_hot":
                if not _is_int(x):
                    raise ValueError(f"Feature '{name}' has `output_mode='one_hot'`. Thus its "
                                     f"preprocessor should return an integer dtype. Instead it "
                                     f"returns a {_dtype_name(x)} dtype.")
                encoder = layers.CategoryEncoding(num_tokens=self._cardinality(name),
                                                  output_mode="multi_hot")
                self.one_hot_encoders[name] = encoder
                x = _numpy(encoder(x))
            if self.output_mode == "concat" and (_is_int(x) or x.dtype.kind in "OUS"):
                raise ValueError(f"Cannot concatenate features because feature '{name}' has not "
                                 f"been encoded (it has dtype {_dtype_name(x)}). Consider using "
                                 f"`output_mode='dict'`.")
            widths[name] = x.shape[1:]
            dtypes[name] = x.dtype
        self._widths, self._dtypes = widths, dtypes
        self._sublayers_built = True

    def _merge(self, pre, crossed):
        merged = {**pre, **crossed}
        out = {}
        for name in self._names():
            x = merged[name]
            encoder = self.one_hot_encoders.get(name)
            if encoder is not None:
                x = _numpy(encoder(x))
            out[name] = x
        if self.output_mode == "dict":
            return out
        return np.concatenate([out[n].astype(backend.floatx()) for n in self._names()], axis=-1)

    def _encode(self, data):
        if not isinstance(data, dict):
            raise ValueError(f"A FeatureSpace can only be called with a dict. Received: "
                             f"data={data} (of type {type(data)}")
        missing = [n for n in self.features if n not in data]
        if missing:
            raise ValueError(f"FeatureSpace: the data has no feature(s) {missing}; expected a "
                             f"dict with the keys {sorted(self.features)}")
        extra = [n for n in data if n not in self.features]
        if extra:
            raise ValueError(f"FeatureSpace: the data has feature(s) {extra} not in the "
                             f"FeatureSpace, whose features are {sorted(self.features)}")
        arrays, rebatched = {}, False
        for name in self.features:
            x = _numpy(data[name])
            if x.ndim == 0:
                x, rebatched = x.reshape(1, 1), True
            elif x.ndim == 1:
                x = x[:, None]
            arrays[name] = x
        pre = self._preprocess(arrays)
        merged = self._merge(pre, self._cross(pre))
        if rebatched:
            if self.output_mode == "concat":
                if merged.shape[0] != 1:
                    raise ValueError(f"Expected rebatched data to have batch size 1. Received: "
                                     f"shape={merged.shape}")
                merged = merged[0]
            else:
                merged = {k: v[0] if v.ndim == 2 and v.shape[0] == 1 else v
                          for k, v in merged.items()}
        return merged

    def __call__(self, data, *args, **kwargs):
        self._check_if_built()
        if isinstance(data, dict) and any(isinstance(v, KerasTensor) for v in data.values()):
            return self._symbolic(data)
        out = self._encode(data)
        if isinstance(out, dict):
            return {k: Tensor(v) for k, v in out.items()}
        return Tensor(out)

    def call(self, inputs):
        return self(inputs)

    # ---------------------------------------------------------------- symbolic
    def _symbolic(self, data):
        outputs = self._symbolic_call(data)
        if isinstance(outputs, dict):
            for name, t in outputs.items():
                t.dtype = np.dtype(self._dtypes[name])
        return outputs

    def compute_output_shape(self, input_shape):
        self._check_if_built()
        batch = next(iter(input_shape.values()))[0] if isinstance(input_shape, dict) else None
        if self.output_mode == "dict":
            return {n: (batch,) + tuple(self._widths[n]) for n in self._names()}
        return (batch, int(sum(int(np.prod(self._widths[n])) for n in self._names())))

    def _output_dtype(self):
        return backend.floatx()

    def _make_inputs(self):
        from ..layers.core import Input
        return {name: Input(shape=(1,), dtype=object if f.dtype == "string" else f.dtype,
                            name=name) for name, f in self.features.items()}

    def get_inputs(self):
        """The dict of ``Input`` tensors (shape ``(None, 1)``, one per feature); string
        features are Inputs of dtype ``object``."""
        self._check_if_built()
        if self.inputs is None:
            self.inputs = self._make_inputs()
        return self.inputs

    def get_encoded_features(self):
        """The FeatureSpace called on :meth:`get_inputs`: a symbolic ``(None, width)`` tensor
        (``"concat"``) or dict of them (``"dict"``)."""
        self._check_if_adapted()
        if self.encoded_features is None:
            self.encoded_features = self(self.get_inputs())
        return self.encoded_features

    # ---------------------------------------------------------------- config
    def get_config(self):
        return {"features": {n: _wrap(f) for n, f in self.features.items()},
                "output_mode": self.output_mode,
                "crosses": [_wrap(c) for c in self.crosses],
                "crossing_dim": self.crossing_dim, "hashing_dim": self.hashing_dim,
                "num_discretization_bins": self.num_discretization_bins}

    @classmethod
    def from_config(cls, config):
        return cls(**config)

    def get_build_config(self):
        return {n: (f.preprocessor.get_build_config()
                    if hasattr(f.preprocessor, "get_build_config") else None)
                for n, f in self.features.items()}

    def build_from_config(self, config):
        for name, build in config.items():
            p = self.features[name].preprocessor
            if build and not getattr(p, "built", True) and hasattr(p, "build_from_config"):
                p.build_from_config(build)
        self._is_adapted = True

    def save(self, filepath):
        raise NotImplementedError("FeatureSpace.save is not supported by axone; keep "
                                  "get_config() (the adapted vocabularies and bin boundaries "
                                  "are in the preprocessors' configurations) and rebuild with "
                                  "FeatureSpace.from_config")


def _dtype_name(x):
    return "string" if x.dtype.kind in "OUS" else x.dtype.name
