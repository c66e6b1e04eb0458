"""An MLP on scikit-learn's bundled breast-cancer data: the lrstudy example of a classification
model and data factory (examples/breast_cancer/README.md)."""
