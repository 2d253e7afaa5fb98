"""Keras layers, by family."""
from .base import KerasTensor, Layer, Node
from .core import Activation, Dense, Dropout, Flatten, Input, InputLayer, InputSpec, Lambda, Reshape
from .serialization import deserialize, serialize
from .convolutional import (Conv1D, Conv1DTranspose, Conv2D, Conv2DTranspose, Conv3D,
                            Conv3DTranspose, Convolution1D, Convolution1DTranspose, Convolution2D,
                            Convolution2DTranspose, Convolution3D, Convolution3DTranspose,
                            DepthwiseConv1D, DepthwiseConv2D, SeparableConv1D, SeparableConv2D,
                            SeparableConvolution1D, SeparableConvolution2D)
from .pooling import (AveragePooling1D, AveragePooling2D, AvgPool1D, AvgPool2D, GlobalAveragePooling1D,
                      GlobalAveragePooling2D, GlobalAvgPool1D, GlobalAvgPool2D, GlobalMaxPool1D,
                      GlobalMaxPool2D, GlobalMaxPooling1D, GlobalMaxPooling2D, MaxPool1D, MaxPool2D,
                      MaxPooling1D, MaxPooling2D)
from .recurrent import (GRU, LSTM, RNN, Bidirectional, GRUCell, LSTMCell, SimpleRNN, SimpleRNNCell,
                        TimeDistributed)
from .embedding import Embedding, Masking, ReversibleEmbedding
from .activation import ELU, LeakyReLU, PReLU, ReLU, Softmax
from .normalization import (BatchNormalization, GroupNormalization, LayerNormalization,
                            RMSNormalization, SpectralNormalization, UnitNormalization)
from .regularization import GaussianDropout, GaussianNoise
from .merging import (Add, Average, Concatenate, Maximum, Minimum, Multiply, Subtract, add,
                      average, concatenate, maximum, minimum, multiply, subtract)

__all__ = ["SimpleRNN", "LSTM", "GRU", "RNN", "SimpleRNNCell", "LSTMCell", "GRUCell",
           "Bidirectional", "TimeDistributed", "Embedding", "Masking", "Layer", "KerasTensor", "Node", "InputLayer", "Input", "Dense", "Activation",
           "Dropout", "Flatten", "Reshape", "Lambda", "InputSpec", "serialize", "deserialize", "Add", "Subtract", "Multiply", "Average", "Maximum",
           "Minimum", "Concatenate", "add", "subtract", "multiply", "average", "maximum",
           "minimum", "concatenate", "ReLU", "LeakyReLU", "PReLU", "ELU", "Softmax",
           "BatchNormalization", "GaussianNoise", "GaussianDropout", "Conv1D", "Conv2D",
           "Convolution1D", "Convolution2D", "DepthwiseConv2D", "SeparableConv2D", "Conv2DTranspose",
           "MaxPooling1D", "MaxPooling2D", "AveragePooling1D", "AveragePooling2D", "MaxPool1D",
           "MaxPool2D", "AvgPool1D", "AvgPool2D", "GlobalMaxPooling1D", "GlobalMaxPooling2D",
           "GlobalAveragePooling1D", "GlobalAveragePooling2D", "GlobalMaxPool1D", "GlobalMaxPool2D",
           "GlobalAvgPool1D", "GlobalAvgPool2D"]

from .reshaping import (Cropping1D, Cropping2D, UpSampling1D, UpSampling2D, ZeroPadding1D,
                        ZeroPadding2D)
from .preprocessing import (CenterCrop, RandomBrightness, RandomContrast, RandomCrop, RandomFlip,
                            RandomRotation, RandomTranslation, RandomZoom, Rescaling, Resizing)

__all__ += ["ZeroPadding1D", "ZeroPadding2D", "Cropping1D", "Cropping2D", "UpSampling1D",
            "UpSampling2D", "Rescaling", "Resizing", "CenterCrop", "RandomFlip", "RandomRotation",
            "RandomZoom", "RandomTranslation", "RandomBrightness", "RandomContrast", "RandomCrop"]

from .text import TextVectorization

__all__ += ["TextVectorization"]

from .features import (CategoryEncoding, Discretization, HashedCrossing, Hashing, IntegerLookup,
                       Normalization, StringLookup)

__all__ += ["Normalization", "Discretization", "CategoryEncoding", "Hashing", "HashedCrossing",
            "IntegerLookup", "StringLookup"]

from .einsum_dense import EinsumDense
from .attention import (AdditiveAttention, Attention, GroupedQueryAttention, GroupQueryAttention,
                        MultiHeadAttention)

__all__ += ["ReversibleEmbedding", "LayerNormalization", "RMSNormalization", "UnitNormalization",
            "GroupNormalization", "SpectralNormalization", "EinsumDense", "MultiHeadAttention",
            "GroupQueryAttention", "GroupedQueryAttention", "Attention", "AdditiveAttention"]

__all__ += ["Conv3D", "Convolution3D", "Conv1DTranspose", "Conv3DTranspose", "Convolution1DTranspose",
            "Convolution2DTranspose", "Convolution3DTranspose", "DepthwiseConv1D", "SeparableConv1D",
            "SeparableConvolution1D", "SeparableConvolution2D"]

from .pooling import (AdaptiveAveragePooling1D, AdaptiveAveragePooling2D, AdaptiveAveragePooling3D,
                      AdaptiveMaxPooling1D, AdaptiveMaxPooling2D, AdaptiveMaxPooling3D,
                      AveragePooling3D, AvgPool3D, GlobalAveragePooling3D, GlobalAvgPool3D,
                      GlobalMaxPool3D, GlobalMaxPooling3D, MaxPool3D, MaxPooling3D)
from .reshaping import Cropping3D, Permute, RepeatVector, UpSampling3D, ZeroPadding3D
from .identity import Identity
from .regularization import (ActivityRegularization, AlphaDropout, SpatialDropout1D,
                             SpatialDropout2D, SpatialDropout3D)
from .merging import Dot, dot

__all__ += ["MaxPooling3D", "AveragePooling3D", "MaxPool3D", "AvgPool3D", "GlobalMaxPooling3D",
            "GlobalAveragePooling3D", "GlobalMaxPool3D", "GlobalAvgPool3D",
            "AdaptiveAveragePooling1D", "AdaptiveAveragePooling2D", "AdaptiveAveragePooling3D",
            "AdaptiveMaxPooling1D", "AdaptiveMaxPooling2D", "AdaptiveMaxPooling3D", "Cropping3D",
            "UpSampling3D", "ZeroPadding3D", "Permute", "RepeatVector", "Identity",
            "ActivityRegularization", "AlphaDropout", "SpatialDropout1D", "SpatialDropout2D",
            "SpatialDropout3D", "Dot", "dot"]

from .conv_lstm import ConvLSTM1D, ConvLSTM2D, ConvLSTM3D

__all__ += ["ConvLSTM1D", "ConvLSTM2D", "ConvLSTM3D"]

from .audio import MelSpectrogram, STFTSpectrogram

__all__ += ["MelSpectrogram", "STFTSpectrogram"]

from .image_augmentation import (AugMix, AutoContrast, ContrastLimitedAdaptiveHistogramEqualization,
                                 CutMix, Equalization, MaxNumBoundingBoxes, MixUp, Pipeline,
                                 RandAugment, RandomColorDegeneration, RandomColorJitter,
                                 RandomGrayscale, RandomHue, RandomInvert, RandomPosterization,
                                 RandomSaturation, RandomSharpness, Solarization)

__all__ += ["AutoContrast", "Equalization", "Solarization", "RandomColorDegeneration",
            "RandomColorJitter", "RandomGrayscale", "RandomHue", "RandomInvert",
            "RandomPosterization", "RandomSaturation", "RandomSharpness", "MixUp", "CutMix",
            "RandAugment", "AugMix", "MaxNumBoundingBoxes",
            "ContrastLimitedAdaptiveHistogramEqualization", "Pipeline"]

from .image_geometric import (RandomElasticTransform, RandomErasing, RandomGaussianBlur,
                              RandomPerspective, RandomShear)

__all__ += ["RandomShear", "RandomPerspective", "RandomElasticTransform", "RandomGaussianBlur",
            "RandomErasing"]

from .recurrent import StackedRNNCells

__all__ += ["StackedRNNCells"]

from .wrappers import TorchModuleWrapper, Wrapper

__all__ += ["TorchModuleWrapper", "Wrapper"]
