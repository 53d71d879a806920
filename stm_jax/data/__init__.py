"""Training data: dataset sources, synthetic videos, STM clip sampling, augmentation, grain pipeline.

Modules (import what you need; nothing here imports TensorFlow, and tensorflow_datasets is imported only
when a TFDS source is built):
  davis, youtube_vos, image_sets, tfds_sources, synthetic  -- random-access, picklable sources
  sampling, augment, static_clips, clips                    -- one sample from one record
  config, registry, pipeline                                -- config defaults and the grain pipeline
"""
