"""``keras.preprocessing``: ``image`` (load_img, img_to_array, array_to_img, save_img),
``sequence`` (pad_sequences) and the dataset builders Keras also exports here."""
from . import image_utils as image
from . import sequence_utils as sequence
from .timeseries import timeseries_dataset_from_array

__all__ = ["image", "sequence", "timeseries_dataset_from_array"]
