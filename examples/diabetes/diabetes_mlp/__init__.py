"""An MLP regressor on scikit-learn's bundled diabetes data: the lrstudy example of a regression
model and data factory (examples/diabetes/README.md)."""
