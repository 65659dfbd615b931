"""The w4a16_build kernel generator: manifest -> validated plan -> CUDA sources.

Imports are relative so that the same folder works as the top-level
`generator` package of a source checkout and as `w4a16_build._generator`
inside an installed wheel. Importing the package imports nothing else: the
runtime reads only `model` (and its `axes`, `rules`), which need neither
PyYAML nor jinja2; `manifest`, `pipeline`, `render` and the CLIs load when used.
"""
