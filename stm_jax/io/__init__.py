"""Image and mask file input/output shared by the data, inference and evaluation code."""
