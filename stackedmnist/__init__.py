"""Stacked MNIST: data, mode classifier, mode count and reverse KL (paper Tables 1 and 3)."""
