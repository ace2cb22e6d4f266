"""Design-space sweeps: accuracy against hardware across any config keys, on Dask distributed.

A sweep file names a base config, optional overrides and axes (config keys with the values
they take). Every point of the grid (or a seeded random sample of it) is resolved into a full
``Config`` before any work starts (``spec``), then runs train -> export -> compile -> [sim] ->
estimate as one Dask task in its own build directory (``point``), cached by a hash of the
resolved point so a sweep run again resumes (``runner``). The results are a JSON file, a
Markdown table with the Pareto fronts (``pareto``) and a plot (``results``).

``hwprune.api.sweep`` is the entry point; ``hwprune sweep`` is its command.
"""
