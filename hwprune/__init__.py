"""hwprune: sparse, quantized PyTorch networks to bit-exact, sized FPGA hardware."""

__version__ = "0.1.0"
