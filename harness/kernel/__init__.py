"""Kernel source, patch series, configuration fragments and the out-of-tree build."""
