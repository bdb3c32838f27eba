"""MLOps Blueprint: stamp out locked-down Azure Machine Learning projects."""

__version__ = "0.2.0"
