"""Generated reports: reproduced versus reported, ensembles, architecture fidelity, paper claims, figures.

`read` (MLflow -> typed rows, with `read_sqlite` and `records`) is separate from the pure computations (`reported`,
`claims` and the rule in `verdicts`, `ensembles`, `speedup`, `proxy`, `sweeps`, `fidelity`, over `runs` and `stats`)
and from `render(ReportInputs) -> str` (the sections in `render_*`); `build.generate_report` is the glue that writes
`reports/<experiment>.md` and its figures.
"""
