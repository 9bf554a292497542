"""Adapters that put nimbleops under the trainers people use. Each submodule imports its trainer
library (and only it) when imported itself: ``nimbleops.integrations.sb3`` needs
stable-baselines3, ``nimbleops.integrations.torchrl`` needs torchrl."""
