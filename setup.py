"""Build configuration for the optional compiled module ``axone._kernels`` (see axone/_kernels.c).

Everything else is declared in pyproject.toml.  The extension is optional: without a C compiler
the build goes on and axone uses its NumPy implementation of the same updates.
"""
import sys

from setuptools import Extension, setup

libraries = []
if sys.platform == "win32":
    compile_args, link_args = ["/O2", "/fp:precise"], []
else:
    compile_args = ["-O3", "-ffp-contract=off", "-fno-math-errno", "-fno-trapping-math", "-pthread"]
    link_args = ["-pthread"]
    if sys.platform.startswith("linux"):
        libraries = ["dl"]          # dladdr (checks the BLAS address handed to set_gemm)

setup(ext_modules=[Extension("axone._kernels", ["axone/_kernels.c"], extra_compile_args=compile_args,
                             extra_link_args=link_args, libraries=libraries,
                             optional=True)])
