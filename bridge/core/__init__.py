"""Kernel: errors, settings, ids, clock, crypto. Imports no other project code."""
