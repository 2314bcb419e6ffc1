"""Emergencies and faults injected into the synthetic city, with their ground truth."""
