"""Converters from PyTorch checkpoints (official STM, torchvision ResNet) to stm_jax variables."""
