"""The on-device risk model: features, the int8 TFLite runner, and the training pipeline."""
