"""cocotb testbench launchers (pytest) for the generated RTL."""
