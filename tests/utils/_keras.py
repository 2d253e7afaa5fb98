"""Real Keras 3's functions (the torch backend), imported from keras.src so that the keras
import alias of other tests cannot stand in for them."""
import sys

import pytest


def keras_utils():
    for name in list(sys.modules):
        if (name == "keras" or name.startswith("keras.")) and getattr(sys.modules[name], "__axone_alias__", False):
            pytest.skip("the keras import alias is installed in this process")
    pytest.importorskip("keras")
    from keras.src.utils import dataset_utils, progbar, sequence_utils, timeseries_dataset_utils
    return dict(pad_sequences=sequence_utils.pad_sequences, Progbar=progbar.Progbar,
                split_dataset=dataset_utils.split_dataset,
                rescale=dataset_utils._rescale_dataset_split_sizes,
                timeseries=timeseries_dataset_utils.timeseries_dataset_from_array)
