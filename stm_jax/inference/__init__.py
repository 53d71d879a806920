"""Video inference: the jitted per-frame step and whole-video segmentation."""
