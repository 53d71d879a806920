"""STM training: loss, optimizer, data-parallel step, checkpoints, logging and the 'train' job."""
