"""keras.ops.nn names that axone keeps with their families resolve under keras.ops.nn too."""
import subprocess
import sys
import textwrap

import axone.ops as O
import axone.ops.nn as N

_NAMES = ["average_pool", "batch_normalization", "conv", "conv_transpose", "depthwise_conv", "elu",
          "gelu", "hard_sigmoid", "leaky_relu", "log_softmax", "max_pool", "moments", "one_hot",
          "relu", "selu", "sigmoid", "silu", "softmax", "softplus", "softsign", "swish"]


def test_the_same_functions_under_ops_and_ops_nn():
    for name in _NAMES:
        assert getattr(N, name) is getattr(O, name), name


def test_through_the_keras_alias():
    code = textwrap.dedent("""
        import numpy as np
        from axone.compat import install_keras_alias
        install_keras_alias()
        import keras
        from keras.ops.nn import relu, softmax
        x = np.array([[-1.0, 2.0]], dtype="float32")
        assert np.asarray(relu(x)).tolist() == [[0.0, 2.0]]
        assert abs(float(np.asarray(softmax(x)).sum()) - 1.0) < 1e-6
        assert keras.ops.nn.moments is keras.ops.moments
        print("ok")
    """)
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, timeout=120)
    assert out.returncode == 0 and "ok" in out.stdout, out.stderr
